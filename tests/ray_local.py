"""How the suite starts Ray: always a private local instance (``address="local"``), as the sweep driver
does (``orchestrator.sweep_launch.init_ray``), never whatever cluster this machine happens to run.

A bare ``ray.init()`` or ``ray.init(num_cpus=1)`` joins a cluster found through ``RAY_ADDRESS`` or
``<tmp>/ray/ray_current_cluster`` (a user's ``ray start --head``, or a stale file after a crash) and
then fails ("When connecting to an existing cluster, num_cpus and num_gpus must not be provided")
or runs the test on the user's cluster. ``tests/test_ray_beside_a_user_cluster.py`` runs these with
a live head on the machine.
"""

from __future__ import annotations

LOCAL_RAY_INIT = 'ray.init(address="local", num_cpus={num_cpus}, include_dashboard=False, log_to_driver=False)'


def start_local_ray(num_cpus: int = 1, **kwargs) -> None:
    """A private Ray for this process (stop it with ``ray.shutdown()``)."""
    import ray

    ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, log_to_driver=False, **kwargs)

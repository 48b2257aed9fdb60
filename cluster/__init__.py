"""Ray cluster-launcher YAMLs, `asym cluster ...`, and sweep submission to a cluster head."""

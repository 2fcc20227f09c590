"""Hardware-grounded step-time model (roofline) for the `aic_*` engine args."""

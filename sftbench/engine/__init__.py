"""Engine: devices, the fit loop, evaluation, verification, timing and the case runner."""

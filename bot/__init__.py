"""Front-ends and process wiring: the composition root."""

"""A simulated marketplace with known ground truth, and the traffic driver of the demo."""

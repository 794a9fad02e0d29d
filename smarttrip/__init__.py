"""SmartTrip Learner: command-line entry point and process-wide settings."""

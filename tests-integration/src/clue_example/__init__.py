"""The example system of clue for Python: services, harness and demo."""

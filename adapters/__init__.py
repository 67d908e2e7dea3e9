"""Framework adapters: each makes the one sesh engine native in a framework."""

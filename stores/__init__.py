"""Session stores: each module holds one store implementing sesh.core.Store."""

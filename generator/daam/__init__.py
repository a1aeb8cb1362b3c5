"""daam stage."""

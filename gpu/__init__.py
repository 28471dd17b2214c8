"""Work that runs on a lent GPU machine: what travels there, the one script it runs, what comes back."""

"""Paper reproductions: one file per paper, registered with ``@reproduction``; run with ``sciml reproduce KEY``."""

"""The elector's own HTTP: the server, its routes for the app, the status board, the app health probe."""

"""What a person sees: the console at /, public status pages and badges,
and the WebSocket hub that keeps open pages live."""

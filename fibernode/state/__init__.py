"""Small shared states: the session and the branding."""

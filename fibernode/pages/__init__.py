"""One module per route; each holds its page's own substate."""

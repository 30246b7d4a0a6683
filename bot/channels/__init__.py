"""One module per channel: each turns its platform's requests into Inbound and renders replies."""

"""Report cards (HTML and Markdown through Jinja2), their statistics and charts."""

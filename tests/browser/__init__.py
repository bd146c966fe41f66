"""The browser test: the integration set up in a real Home Assistant's frontend, in Chromium."""

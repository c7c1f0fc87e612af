"""Browser tests of the map UI (Playwright + system Chromium)."""

"""Headless Chromium (Debian's) as a speaker's browser: a fake camera and microphone."""

from __future__ import annotations

CHROMIUM = "/usr/bin/chromium"
# Run as root (scripts/test.sh is; hence --no-sandbox) and on a machine that may have no
# internet access (so nothing that calls home); the fake devices give a real camera and
# microphone feed (a green test pattern with a moving pacman, and a beep).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
]

# The two screen sizes pages are tested and photographed at (docs/*.png).
LAPTOP = {"width": 1280, "height": 800}
PHONE = {"width": 360, "height": 740}

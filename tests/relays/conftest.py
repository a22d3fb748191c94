"""Relay tests: this folder (program_replay) is put on sys.path for the rtmp/ tests too."""

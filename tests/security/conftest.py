"""Adversarial tests, one module per surface an outsider can reach (issue 12): each
finding of the review is a test that failed on the code before its fix."""

"""Small units the layers above share: atomic file writes, bounded safe reads, run-folder
locks and cross-process gathers. They import nothing from mentor but errors."""

"""Datasets: the real Home Depot relevance labels, a synthetic catalogue, and the search-log simulator."""

"""Evaluation protocols built on :mod:`pyro_vje.score`: one-class anomaly detection (Section 5.3),
the beta x nu sweep (Figure 4) and cross-data-set out-of-distribution detection."""

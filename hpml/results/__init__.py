"""The results schema: what a benchmark row and a run record hold (torch-free: hpml gate and hpml report read it)."""

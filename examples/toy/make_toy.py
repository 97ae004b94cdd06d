"""Writes the toy catalog: 300 galaxies with true log stellar mass
mu_i ~ N(10.3, 0.4), each measured with noise 0.3 dex; posterior samples
(60 per galaxy) under a uniform interim prior on [8, 13]. Run by hand to
regenerate (needs numpy).

    python3 make_toy.py
"""
import numpy as np

rng = np.random.default_rng(11)
n_obj, n_samp, noise = 300, 60, 0.3
mu = rng.normal(10.3, 0.4, size=n_obj)
x = mu + noise * rng.normal(size=n_obj)
samples = x[:, None] + noise * rng.normal(size=(n_obj, n_samp))
assert samples.min() > 8 and samples.max() < 13
np.save("samples.npy", samples)
with open("measurements.csv", "w") as f:
    f.write("x,sigma\n")
    for xi in x:
        f.write(f"{float(xi)!r},{noise}\n")

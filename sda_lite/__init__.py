r"""sda-lite: score-based data assimilation (Rozet & Louppe, 2023) in a few short modules.

Three floors; imports point down only (``tests/test_architecture.py`` checks it from the source).

Generic machinery, which knows no dynamical system:

* :mod:`~sda_lite.config` -- the scale switch (``SDA_SCALE``), the data directory, the device, the
  paper's sampling settings (``configs/sampling.json``);
* :mod:`~sda_lite.schedule` -- the noise schedule :math:`\mu(t), \sigma(t)`;
* :mod:`~sda_lite.diffusion` -- the VP diffusion (:class:`VPSDE`): perturbation, loss, sampler;
* :mod:`~sda_lite.samplers` -- the samplers: the paper's predictor-corrector, Heun, DPM-Solver++(2M);
* :mod:`~sda_lite.nets` -- the building blocks of networks (residual MLP, U-Net, time embedding);
* :mod:`~sda_lite.score` -- noise predictors: local scores over Markov blankets, window networks,
  the exact Gaussian predictor;
* :mod:`~sda_lite.guidance` -- posterior sampling: SDA, DPS and MMPS guidance, :func:`assimilate`;
* :mod:`~sda_lite.observe` -- observation operators, their JSON specs, synthetic observations;
* :mod:`~sda_lite.fields` -- operations on periodic 2-D fields (vorticity, coarsening, spectra);
* :mod:`~sda_lite.chain` -- the Markov-chain interface every system implements;
* :mod:`~sda_lite.metrics` -- log-densities, :math:`W_1`, RMSE;
* :mod:`~sda_lite.calibration` -- coverage, rank histograms, CRPS, spread-skill ratio;
* :mod:`~sda_lite.baselines` -- particle filter, Kalman smoother, EnKF/EnKS, 4D-Var;
* :mod:`~sda_lite.io` -- atomic writes and dataset files that know their settings;
* :mod:`~sda_lite.windows` -- random windows of trajectories, what window priors train on;
* :mod:`~sda_lite.checkpoints` -- checkpoint directories, written atomically, and the shipped ones;
* :mod:`~sda_lite.training` -- the training loop (AdamW, learning-rate decay, EMA, resume, DDP);
* :mod:`~sda_lite.priors` -- prior configs, their files, and trained priors found, loaded or trained;
* :mod:`~sda_lite.distributed` -- the process group under ``torchrun``;
* :mod:`~sda_lite.plots` -- shared colours and figure helpers;
* :mod:`~sda_lite.reproduction` -- the paper's numbers beside the book's.

Dynamical systems, one place each (dynamics, datasets, observation scenarios, prior recipe):

* :mod:`~sda_lite.lorenz` -- noisy Lorenz-63, the paper's 'lo' and 'hi' scenarios;
* :mod:`~sda_lite.lorenz96` -- noisy Lorenz-96 on a ring of any size, its scenarios and localisation;
* :mod:`~sda_lite.linear` -- a linear-Gaussian chain with exact posteriors;
* :mod:`~sda_lite.kolmogorov` -- Kolmogorov flow on jax-cfd (``flow``, ``data``, ``prior``,
  ``scenarios``, ``plots``).

On top:

* :mod:`~sda_lite.widgets` -- the interactive explorers (one module each, around a shared panel);
* :mod:`~sda_lite.cli` -- the ``sda-lite`` command (generate, train, observe, assimilate, evaluate).

Earlier import paths keep working for this release: :mod:`sda_lite.dynamics`, :mod:`sda_lite.data`,
:mod:`sda_lite.train` and :mod:`sda_lite.scenarios` re-export the names that moved.
"""

__version__ = "0.2.0"

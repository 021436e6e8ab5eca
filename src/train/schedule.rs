//! Learning-rate plateau schedule and early stopping, both driven by validation RMSE.

/// torch.optim.lr_scheduler.ReduceLROnPlateau in mode "min" with a relative threshold
/// and no cooldown: after more than `patience` epochs without an improvement of at least
/// `threshold` (relative), the rate is multiplied by `factor`, never below `min_lr`.
#[derive(Debug, Clone, PartialEq)]
pub struct ReduceLrOnPlateau {
    lr: f64,
    factor: f64,
    patience: usize,
    threshold: f64,
    min_lr: f64,
    best: f64,
    bad_epochs: usize,
}

impl ReduceLrOnPlateau {
    pub fn new(lr: f64, factor: f64, patience: usize, threshold: f64, min_lr: f64) -> Self {
        ReduceLrOnPlateau {
            lr,
            factor,
            patience,
            threshold,
            min_lr,
            best: f64::INFINITY,
            bad_epochs: 0,
        }
    }

    pub fn lr(&self) -> f64 {
        self.lr
    }

    /// Records one epoch's metric and returns the learning rate for the next epoch.
    pub fn step(&mut self, metric: f64) -> f64 {
        if metric < self.best * (1.0 - self.threshold) {
            self.best = metric;
            self.bad_epochs = 0;
        } else {
            self.bad_epochs += 1;
        }
        if self.bad_epochs > self.patience {
            let reduced = (self.lr * self.factor).max(self.min_lr);
            // PyTorch ignores reductions smaller than its eps of 1e-8.
            if self.lr - reduced > 1e-8 {
                self.lr = reduced;
            }
            self.bad_epochs = 0;
        }
        self.lr
    }
}

/// Stops after `patience` epochs without a new best (strictly lower) validation RMSE.
#[derive(Debug, Clone, PartialEq)]
pub struct EarlyStopping {
    patience: usize,
    best: f64,
    best_epoch: usize,
    epochs_since_best: usize,
}

impl EarlyStopping {
    pub fn new(patience: usize) -> Self {
        EarlyStopping { patience, best: f64::INFINITY, best_epoch: 0, epochs_since_best: 0 }
    }

    /// Records an epoch; true when it is the best so far (its weights should be kept).
    pub fn record(&mut self, epoch: usize, metric: f64) -> bool {
        if metric < self.best {
            self.best = metric;
            self.best_epoch = epoch;
            self.epochs_since_best = 0;
            true
        } else {
            self.epochs_since_best += 1;
            false
        }
    }

    pub fn should_stop(&self) -> bool {
        self.patience > 0 && self.epochs_since_best >= self.patience
    }

    pub fn best_epoch(&self) -> usize {
        self.best_epoch
    }
}

"""`DriveWorldModule`: the thin Lightning shell around `DriveWorldModel`.

It only calls `model.compute_loss` through one `_step(batch, prefix)`, logs `f"{prefix}/{name}"`,
and builds the optimizer. Hyper-parameters are stored as plain values (the model config as a
dict), so checkpoints load with `torch.load(weights_only=True)`.
"""

from __future__ import annotations

import pytorch_lightning as pl
import torch
from torch import Tensor

from drivewm.data.types import Batch
from drivewm.model import DriveWorldModel, ModelConfig


class DriveWorldModule(pl.LightningModule):
    """Lightning wrapper.

    Args:
        config: the model hyper-parameters.
        lr: AdamW learning rate.
        weight_decay: AdamW weight decay (not on norms and biases).
        warmup_steps: linear warm-up steps, then cosine decay to 5 % over `max_steps` of the trainer.
    """

    def __init__(
        self, config: ModelConfig | None = None, lr: float = 2e-3, weight_decay: float = 1e-4, warmup_steps: int = 50
    ) -> None:
        super().__init__()
        config = config or ModelConfig()
        self.save_hyperparameters(
            {"config": config.to_dict(), "lr": lr, "weight_decay": weight_decay, "warmup_steps": warmup_steps}
        )
        self.model = DriveWorldModel(config)

    def _step(self, batch: Batch, prefix: str) -> Tensor:
        losses = self.model.compute_loss(batch)
        bs = batch.batch_size
        self.log(f"{prefix}/loss", losses["loss"], prog_bar=True, batch_size=bs, sync_dist=prefix != "train")
        self.log_dict(
            {f"{prefix}/{k}": v.detach() for k, v in losses.items() if k != "loss"},
            batch_size=bs,
            sync_dist=prefix != "train",
        )
        return losses["loss"]

    def training_step(self, batch: Batch, batch_idx: int) -> Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch: Batch, batch_idx: int) -> Tensor:
        return self._step(batch, "val")

    def configure_optimizers(self):
        decay, no_decay = [], []
        for p in self.model.parameters():
            (decay if p.dim() >= 2 else no_decay).append(p)
        opt = torch.optim.AdamW(
            [{"params": decay, "weight_decay": self.hparams.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
            lr=self.hparams.lr,
        )
        total = self.trainer.max_steps if self.trainer and self.trainer.max_steps > 0 else 10_000
        warm = max(1, self.hparams.warmup_steps)

        def factor(step: int) -> float:
            if step < warm:
                return (step + 1) / warm
            progress = min(1.0, (step - warm) / max(1, total - warm))
            return 0.05 + 0.95 * 0.5 * (1 + torch.cos(torch.tensor(progress * torch.pi)).item())

        sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

"""The LightningModule shared by both architectures: the network is injected, the rest is common.

Metrics are torchmetrics objects, one set per stage, so train/val/test states never mix. Per-step
work is kept small (the benchmark holds Lightning to within 15% of a plain PyTorch loop): the
training accuracy is a batch value, and epoch-level values are only computed at epoch end.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pytorch_lightning import LightningModule
from torch import Tensor, nn
from torchmetrics import MeanMetric, MetricCollection
from torchmetrics.classification import (
    BinaryAccuracy,
    BinaryAUROC,
    BinaryConfusionMatrix,
    BinaryF1Score,
)

from models.scores import binary_logit, prob_positive, score_batch

Batch = tuple[Tensor, Tensor]  # (ids [B, L] int64, labels [B] int64)

# Devices with a fused (one kernel per parameter group) AdamW in torch.
_FUSED_ADAMW_DEVICES = frozenset({"cpu", "cuda"})


def adamw(net: nn.Module, learning_rate: float, weight_decay: float) -> torch.optim.AdamW:
    """AdamW, fused where torch has it: the per-tensor loop spent a third of each dense training
    step updating the 8.4 M-parameter word-pair table; fused, the update reads it once."""
    devices = {p.device.type for p in net.parameters()}
    fused = devices <= _FUSED_ADAMW_DEVICES
    return torch.optim.AdamW(
        net.parameters(), lr=learning_rate, weight_decay=weight_decay, fused=fused or None
    )


class SentimentClassifier(LightningModule):
    """Cross-entropy training of any network mapping ids (B, L) to two logits, with AdamW.

    Logged: `train_loss`, `train_acc` per step; `val_loss`, `val_acc` per epoch; `test_loss`,
    `test_acc`, `test_f1`, `test_roc_auc` over the whole test split. After `trainer.test`,
    `test_confusion` holds the 2x2 confusion matrix (rows: true label, columns: prediction).
    """

    def __init__(
        self,
        net: nn.Module,
        learning_rate: float = 1e-3,
        weight_decay: float = 0.0,
        lr_schedule: str = "constant",
    ):
        super().__init__()
        # The net is a constructor argument (not a hyperparameter); the caller logs the preset.
        self.save_hyperparameters(ignore=["net"], logger=False)
        self.net = net
        self.train_acc = BinaryAccuracy()
        self.val_loss = MeanMetric()
        self.val_metrics = MetricCollection({"acc": BinaryAccuracy()}, prefix="val_")
        # Every rank evaluates the full test split (the data module does not shard it), so test
        # metrics are not gathered across processes: gathering would only duplicate samples.
        self.test_loss = MeanMetric(sync_on_compute=False)
        self.test_metrics = MetricCollection(
            {
                "acc": BinaryAccuracy(sync_on_compute=False),
                "f1": BinaryF1Score(sync_on_compute=False),
                "roc_auc": BinaryAUROC(sync_on_compute=False),
            },
            prefix="test_",
        )
        self.test_confusion_metric = BinaryConfusionMatrix(sync_on_compute=False)
        self.test_confusion: Tensor | None = None
        # Per test review, in the split's order: P(positive) and the latent vector, kept so the
        # analysis reads them instead of scoring the test split a second time.
        self._test_batches: list[tuple[Tensor, Tensor, Tensor]] = []
        self.test_prob_positive: Tensor | None = None
        self.test_logit: Tensor | None = None
        self.test_latent: Tensor | None = None

    def forward(self, ids: Tensor) -> Tensor:
        return self.net(ids)

    def training_step(self, batch: Batch, batch_idx: int) -> Tensor:
        ids, labels = batch
        logits = self.net(ids)
        loss = F.cross_entropy(logits, labels)
        # Batch values only: no per-step cross-process sync, the logger writes every N steps.
        acc = self.train_acc(logits.argmax(dim=-1), labels)
        self.log("train_loss", loss, on_step=True, on_epoch=False, prog_bar=True)
        self.log("train_acc", acc, on_step=True, on_epoch=False)
        return loss

    def on_train_epoch_end(self) -> None:
        self.train_acc.reset()  # logged per step only, so Lightning does not reset it

    def _evaluate(self, batch: Batch, loss_metric: MeanMetric, metrics: MetricCollection) -> Tensor:
        ids, labels = batch
        logits = self.net(ids)
        loss_metric.update(F.cross_entropy(logits, labels), weight=len(labels))
        prob_positive = logits.softmax(dim=-1)[:, 1]
        metrics.update(prob_positive, labels)  # thresholded at 0.5 for acc/F1
        return prob_positive

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        self._evaluate(batch, self.val_loss, self.val_metrics)
        self.log("val_loss", self.val_loss, on_epoch=True, prog_bar=True)
        self.log_dict(self.val_metrics, on_epoch=True, prog_bar=True)

    def on_test_epoch_start(self) -> None:
        self._test_batches = []

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        ids, labels = batch
        logits, latent = score_batch(self.net, ids)  # what the analysis would compute
        self.test_loss.update(F.cross_entropy(logits, labels), weight=len(labels))
        prob = prob_positive(logits)
        self.test_metrics.update(prob, labels)  # thresholded at 0.5 for acc/F1
        self.test_confusion_metric.update(prob, labels)
        self._test_batches.append(
            (prob.detach().cpu(), binary_logit(logits).detach().cpu(), latent.detach().cpu())
        )
        self.log("test_loss", self.test_loss, on_epoch=True)
        self.log_dict(self.test_metrics, on_epoch=True)

    def on_test_epoch_end(self) -> None:
        self.test_confusion = self.test_confusion_metric.compute().cpu()
        self.test_confusion_metric.reset()
        if self._test_batches:
            probs, logits, latents = zip(*self._test_batches, strict=True)
            self.test_prob_positive, self.test_logit = torch.cat(probs), torch.cat(logits)
            self.test_latent = torch.cat(latents)
        self._test_batches = []

    def configure_optimizers(self) -> torch.optim.Optimizer | dict:
        optimizer = adamw(self.net, self.hparams.learning_rate, self.hparams.weight_decay)
        if self.hparams.lr_schedule == "constant":
            return optimizer
        # "linear": decay to 0 over the planned steps, stepped every batch (what the tuned
        # presets were chosen with; it let the wider-kernel CNN converge before overfitting).
        total = max(1, int(self.trainer.estimated_stepping_batches))
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: max(0.0, 1.0 - step / total)
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}

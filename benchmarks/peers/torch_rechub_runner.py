"""Train one model with torch-rechub 0.9.0 on the benchmark's data and write its timings and predictions.

Run with the PEER venv's python (see ``torch_rechub_env.py``); this file imports
nothing from the project, only torch-rechub and what its venv has::

    python torch_rechub_runner.py --model {deepfm,dcnv2,mmoe,dssm,sasrec} \
        --data DIR --out OUTDIR --config '{"embed_dim": 16, ...}'

Each model is built and trained with torch-rechub's own models, trainers and data
utilities, the way its docs and examples use them (DataGenerator + CTRTrainer for
ranking, MTLTrainer for MMoE, generate_seq_feature_match + gen_model_input +
MatchDataGenerator + MatchTrainer for DSSM, SASRec + MatchTrainer for SASRec),
with the hyper-parameters from ``--config``. Writes to OUTDIR:

- ``result.json``: prep_s (building torch-rechub inputs / samples / datasets /
  loaders; reading Parquet excluded), train_s (the trainer's fit over the epochs,
  minus any validation pass the trainer insists on), train_samples (rows x
  epochs), peak_rss_mb, notes, plus the hyper-parameters actually passed.
- ``scores.npy``: deepfm/dcnv2 (N_test,) probabilities in ctr_test row order;
  mmoe (N_test, 2) columns click, conversion.
- ``user_vectors.npy`` (n_users, D), row u-1 = user u from the user's training
  history (all events but the last, last max_len of them), and
  ``item_vectors.npy`` (n_items, D), row i-1 = item i; score = dot product.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader

from torch_rechub.basic.features import DenseFeature, SequenceFeature, SparseFeature
from torch_rechub.models.matching import DSSM, SASRec
from torch_rechub.models.multi_task import MMOE
from torch_rechub.models.ranking import DCNv2, DeepFM
from torch_rechub.trainers import CTRTrainer, MatchTrainer, MTLTrainer
from torch_rechub.utils.data import DataGenerator, MatchDataGenerator, PredictDataset, TorchDataset, pad_sequences
from torch_rechub.utils.match import gen_model_input, generate_seq_feature_match

MODELS = ("deepfm", "dcnv2", "mmoe", "dssm", "sasrec")


class Run:
    """Collects timings, notes and the hyper-parameters actually used."""

    def __init__(self, model: str, config: dict, out: Path):
        self.model, self.config, self.out = model, config, out
        self.notes: list[str] = []
        self.used: dict = {}
        self.prep_s = self.train_s = 0.0
        self.extra: dict = {}
        self.train_samples = 0

    def get(self, key, default=None):
        value = self.config.get(key, default)
        self.used[key] = value
        return value

    def write(self, arrays: dict[str, np.ndarray]) -> None:
        shapes = {}
        for name, array in arrays.items():
            array = np.ascontiguousarray(array, dtype=np.float32)
            if not np.isfinite(array).all():
                self.notes.append(f"WARNING: {name} has {int((~np.isfinite(array)).sum())} non-finite values")
            np.save(self.out / f"{name}.npy", array)
            shapes[name] = list(array.shape)
        result = {
            "library": f"torch-rechub {metadata.version('torch-rechub')}",
            "model": self.model,
            "prep_s": round(self.prep_s, 4),
            "train_s": round(self.train_s, 4),
            "train_samples": int(self.train_samples),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "notes": "; ".join(self.notes),
            "hyperparameters": self.used,
            "outputs": shapes,
            "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(),
            **self.extra,
        }
        (self.out / "result.json").write_text(json.dumps(result, indent=2))


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def no_singleton_batch(loader: DataLoader, run: Run) -> DataLoader:
    """torch-rechub's MLP has BatchNorm (and in-batch sampling needs >1 row): a last batch of 1 row would crash."""
    n, bs = len(loader.dataset), loader.batch_size
    if n > bs and n % bs == 1:
        run.notes.append("last training batch would hold 1 row (BatchNorm/in-batch need >1): that row is dropped each epoch (drop_last)")
        return DataLoader(loader.dataset, batch_size=bs, shuffle=True, drop_last=True, num_workers=0)
    return loader


def timed_fit(trainer, run: Run, *fit_args) -> None:
    """trainer.fit(...) timed; any validation pass the trainer runs inside fit is timed too and subtracted."""
    spent = {"s": 0.0, "calls": 0}
    evaluate = trainer.evaluate

    def timed_evaluate(model, loader):
        start = time.perf_counter()
        try:
            return evaluate(model, loader)
        finally:
            spent["s"] += time.perf_counter() - start
            spent["calls"] += 1

    trainer.evaluate = timed_evaluate
    start = time.perf_counter()
    trainer.fit(*fit_args)
    fit_s = time.perf_counter() - start
    trainer.evaluate = evaluate
    run.train_s = fit_s - spent["s"]
    run.extra["fit_s"] = round(fit_s, 4)
    if spent["calls"]:
        run.extra["validation_in_fit_s"] = round(spent["s"], 4)


# ---------------------------------------------------------------- ranking (CTR, MTL)


def read_ctr(data: Path):
    meta = json.loads((data / "ctr_meta.json").read_text())
    return meta, pd.read_parquet(data / "ctr_train.parquet"), pd.read_parquet(data / "ctr_test.parquet")


def ctr_features(meta: dict, embed_dim: int):
    dense = [DenseFeature(name) for name in meta["dense"]]
    sparse = [SparseFeature(name, vocab_size=int(vocab), embed_dim=embed_dim) for name, vocab in meta["sparse"].items()]
    return dense, sparse


def columns(df: pd.DataFrame, names: list[str]) -> dict[str, np.ndarray]:
    # a dict of numpy columns, as torch-rechub's run_census example passes (the DataFrame form indexes a Series per value)
    return {name: df[name].to_numpy() for name in names}


def run_ranking(run: Run, data: Path, workdir: Path) -> dict[str, np.ndarray]:
    meta, train, test = read_ctr(data)
    embed_dim = run.get("embed_dim", 16)
    mlp_params = {"dims": list(run.get("mlp_dims", [256, 128])), "dropout": run.get("dropout", 0.0), "activation": run.get("activation", "relu")}
    bs, epochs = run.get("batch_size", 4096), run.get("epochs", 1)
    optimizer_params = {"lr": run.get("learning_rate", 1e-3), "weight_decay": run.get("weight_decay", 0.0)}

    start = time.perf_counter()
    dense, sparse = ctr_features(meta, embed_dim)
    names = [f.name for f in dense + sparse]
    x_train, y_train = columns(train, names), train["click"].to_numpy()
    x_test, y_test = columns(test, names), test["click"].to_numpy()
    dg = DataGenerator(x_train, y_train)
    train_dl, _, test_dl = dg.generate_dataloader(x_val=x_test, y_val=y_test, x_test=x_test, y_test=y_test, batch_size=bs)
    train_dl = no_singleton_batch(train_dl, run)
    if run.model == "deepfm":
        # docs tutorial: all features to the deep part, the sparse ones to the FM part
        model = DeepFM(deep_features=dense + sparse, fm_features=sparse, mlp_params=mlp_params)
        run.notes.append("DeepFM(deep_features=dense+sparse, fm_features=sparse) as in the torch-rechub DeepFM tutorial")
    else:
        n_cross = run.get("num_cross_layers", 3)
        model = DCNv2(features=dense + sparse, n_cross_layers=n_cross, mlp_params=mlp_params, model_structure="parallel", use_low_rank_mixture=False)
        run.notes.append("DCNv2(model_structure='parallel', use_low_rank_mixture=False): full-matrix CrossNetV2 in parallel with the MLP")
    run.prep_s = time.perf_counter() - start

    trainer = CTRTrainer(model, optimizer_params=optimizer_params, n_epoch=epochs, earlystop_patience=epochs + 1, device="cpu", model_path=str(workdir))
    timed_fit(trainer, run, train_dl)  # no val loader: CTRTrainer.fit then runs no evaluation
    run.train_samples = len(train_dl.dataset) * epochs if not train_dl.drop_last else (len(train_dl.dataset) - 1) * epochs
    run.notes.append(
        "CTRTrainer(optimizer Adam, loss BCELoss on sigmoid output), fit(train_dl) without a validation loader; torch-rechub's MLP puts BatchNorm1d after every Linear"
    )
    scores = np.asarray(trainer.predict(trainer.model, test_dl), dtype=np.float32).reshape(-1)
    return {"scores": scores}


def tiny_validation_rows(y: np.ndarray, per_class: int = 32) -> np.ndarray:
    """A few training rows holding both classes of every task (MTLTrainer.fit computes an AUC per task)."""
    rows: set[int] = set()
    for task in range(y.shape[1]):
        for cls in (0, 1):
            rows.update(np.flatnonzero(y[:, task] == cls)[:per_class].tolist())
    return np.array(sorted(rows), dtype=np.int64)


def run_mmoe(run: Run, data: Path, workdir: Path) -> dict[str, np.ndarray]:
    meta, train, test = read_ctr(data)
    labels = list(meta.get("labels", ["click", "conversion"]))
    embed_dim = run.get("embed_dim", 16)
    n_expert = run.get("num_experts", 4)
    expert_params = {"dims": list(run.get("expert_dims", [128])), "dropout": run.get("dropout", 0.0), "activation": run.get("activation", "relu")}
    tower_params = {"dims": list(run.get("tower_dims", [64])), "dropout": run.get("dropout", 0.0), "activation": run.get("activation", "relu")}
    bs, epochs = run.get("batch_size", 4096), run.get("epochs", 1)
    optimizer_params = {"lr": run.get("learning_rate", 1e-3), "weight_decay": run.get("weight_decay", 0.0)}

    start = time.perf_counter()
    dense, sparse = ctr_features(meta, embed_dim)
    features = sparse + dense  # run_census order: sparse then dense
    names = [f.name for f in features]
    x_train, y_train = columns(train, names), train[labels].to_numpy()
    val_rows = tiny_validation_rows(y_train)
    x_val, y_val = {k: v[val_rows] for k, v in x_train.items()}, y_train[val_rows]
    dg = DataGenerator(x_train, y_train)
    train_dl, val_dl, _ = dg.generate_dataloader(x_val=x_val, y_val=y_val, x_test=x_val, y_test=y_val, batch_size=bs)
    train_dl = no_singleton_batch(train_dl, run)
    task_types = ["classification"] * len(labels)
    model = MMOE(features, task_types, n_expert, expert_params=expert_params, tower_params_list=[dict(tower_params) for _ in labels])
    run.prep_s = time.perf_counter() - start

    trainer = MTLTrainer(model, task_types=task_types, optimizer_params=optimizer_params, n_epoch=epochs, earlystop_patience=epochs + 1, device="cpu", model_path=str(workdir))
    timed_fit(trainer, run, train_dl, val_dl)
    run.train_samples = len(train_dl.dataset) * epochs if not train_dl.drop_last else (len(train_dl.dataset) - 1) * epochs
    run.notes.append(
        f"MTLTrainer.fit requires a validation loader and evaluates it every epoch: given {len(val_rows)} training rows "
        "(both classes of each task); its evaluation time is measured and subtracted from train_s (validation_in_fit_s), "
        "the EarlyStopper's state_dict copy stays in; loss = mean of the two BCE losses"
    )
    predict_dl = DataLoader(PredictDataset(columns(test, names)), batch_size=bs, shuffle=False)
    scores = np.asarray(trainer.predict(trainer.model, predict_dl), dtype=np.float32)
    return {"scores": scores.reshape(len(test), len(labels))}


# ---------------------------------------------------------------- retrieval


def read_recall(data: Path):
    meta = json.loads((data / "recall_meta.json").read_text())
    return meta, pd.read_parquet(data / "recall_interactions.parquet")


def user_histories(inter: pd.DataFrame, n_users: int) -> list[np.ndarray]:
    """Per user 1..n_users, the training events (all but the last), oldest first."""
    users = inter["user_id"].to_numpy()
    items = inter["item_id"].to_numpy()
    starts = np.r_[0, np.flatnonzero(np.diff(users)) + 1]
    ends = np.r_[starts[1:], len(users)]
    hist = [np.zeros(0, dtype=np.int64)] * n_users
    for u, s, e in zip(users[starts], starts, ends):
        hist[int(u) - 1] = items[s:e - 1]
    return hist


def run_dssm(run: Run, data: Path, workdir: Path) -> dict[str, np.ndarray]:
    meta, inter = read_recall(data)
    n_users, n_items = int(meta["n_users"]), int(meta["n_items"])
    embed_dim = run.get("embed_dim", 32)
    max_len = run.get("max_len", meta.get("max_len", 50))
    temperature = run.get("temperature", 0.05)
    tower_params = {"dims": list(run.get("tower_dims", [128, 64])), "dropout": run.get("dropout", 0.0), "activation": run.get("activation", "relu")}
    bs, epochs = run.get("batch_size", 2048), run.get("epochs", 1)
    optimizer_params = {"lr": run.get("learning_rate", 1e-3), "weight_decay": run.get("weight_decay", 0.0)}
    seed = run.config.get("seed", 2022)
    raw = inter[["user_id", "item_id", "ts"]].copy()  # generate_seq_feature_match sorts its input in place

    start = time.perf_counter()
    # mode=0, neg_ratio=0: positives only, negatives come from the batch (in_batch_neg) -- as torch-rechub's in-batch test does.
    # Given the whole log it keeps each user's last event as its test row, so no training row contains it.
    df_train, _df_test = generate_seq_feature_match(raw, "user_id", "item_id", time_col="ts", item_attribute_cols=[], sample_method=0, mode=0, neg_ratio=0, min_item=0)
    user_profile = pd.DataFrame({"user_id": np.arange(1, n_users + 1)})
    item_profile = pd.DataFrame({"item_id": np.arange(1, n_items + 1)})
    x_train = gen_model_input(df_train, user_profile, "user_id", item_profile, "item_id", seq_max_len=max_len)
    y_train = x_train["label"]
    all_item = {"item_id": item_profile["item_id"].to_numpy()}
    dg = MatchDataGenerator(x=x_train, y=y_train)
    train_dl, _, item_dl = dg.generate_dataloader(x_train, all_item, batch_size=bs, num_workers=0)
    train_dl = no_singleton_batch(train_dl, run)
    user_features = [
        SparseFeature("user_id", vocab_size=n_users + 1, embed_dim=embed_dim),
        SequenceFeature("hist_item_id", vocab_size=n_items + 1, embed_dim=embed_dim, pooling="mean", shared_with="item_id", padding_idx=0),
    ]
    item_features = [SparseFeature("item_id", vocab_size=n_items + 1, embed_dim=embed_dim)]
    model = DSSM(user_features, item_features, temperature=temperature, user_params=dict(tower_params), item_params=dict(tower_params))
    apply_temperature = bool(run.get("apply_temperature", False))
    if apply_temperature:
        model = TemperatureScaled(model, temperature)
    run.prep_s = time.perf_counter() - start
    del raw

    trainer = MatchTrainer(model, mode=0, in_batch_neg=True, in_batch_neg_ratio=None, hard_negative=False, sampler_seed=seed, optimizer_params=optimizer_params, n_epoch=epochs, device="cpu", model_path=str(workdir))
    timed_fit(trainer, run, train_dl)
    n_rows = len(df_train) - (1 if train_dl.drop_last else 0)
    run.train_samples = n_rows * epochs
    run.extra["train_rows"] = int(len(df_train))
    run.notes.extend([
        "generate_seq_feature_match(mode=0, neg_ratio=0) on the whole log: it holds out each user's last event itself (its test split), "
        f"so its {len(df_train)} training rows are targets 2..n-1 with all earlier items as history; gen_model_input pads/truncates 'pre' to max_len",
        "MatchTrainer(mode=0, in_batch_neg=True, in_batch_neg_ratio=None): cross-entropy over user_i . item_j for all j in the batch "
        "(torch-rechub 0.9.0's in-batch mode; same-item collisions in a batch count as negatives)",
        (f"temperature={temperature} applied by the opt-in TemperatureScaled wrapper (config apply_temperature=true): in-batch logits = cosine / temperature; "
         "torch-rechub 0.9.0 itself never applies DSSM's temperature") if apply_temperature else
        (f"temperature={temperature} is passed to DSSM but torch-rechub 0.9.0 never applies it (DSSM.forward has it commented out, "
         "the in-batch path scores raw cosines), so the softmax logits are cosines in [-1, 1] (as shipped; config apply_temperature=true divides them by it)"),
        "towers: torch-rechub MLP dims=tower_dims, each layer Linear+BatchNorm1d+activation+Dropout (the output layer too), then L2-normalised (cosine)",
        "hist_item_id SequenceFeature(pooling='mean', shared_with='item_id', padding_idx=0) so padding is excluded from the mean",
        "MatchDataGenerator.generate_dataloader(num_workers=0) (its default is 8 worker processes)",
    ])

    hist = user_histories(inter, n_users)
    x_user = {"user_id": np.arange(1, n_users + 1), "hist_item_id": pad_sequences(hist, maxlen=max_len, padding="pre", truncating="pre").astype(np.int64)}
    user_dl = DataLoader(PredictDataset(x_user), batch_size=bs, shuffle=False)
    users = trainer.inference_embedding(model=model, mode="user", data_loader=user_dl, model_path=str(workdir))
    items = trainer.inference_embedding(model=model, mode="item", data_loader=item_dl, model_path=str(workdir))
    return {"user_vectors": users.numpy(), "item_vectors": items.numpy()}


class TemperatureScaled(torch.nn.Module):
    """Opt-in (config ``apply_temperature``): DSSM with its user tower divided by the temperature.

    torch-rechub 0.9.0 stores DSSM's ``temperature`` but never uses it, and
    MatchTrainer's in-batch path scores ``user_tower(x) @ item_tower(x).T``
    directly, so dividing the (L2-normalised) user vector gives cosine / T logits.
    Inference (``mode`` = "user"/"item") returns the unscaled, normalised vectors.
    """

    def __init__(self, dssm: DSSM, temperature: float):
        super().__init__()
        self.dssm = dssm
        self.temperature = float(temperature)
        self.mode = None

    def user_tower(self, x):
        return self.dssm.user_tower(x) / self.temperature

    def item_tower(self, x):
        return self.dssm.item_tower(x)

    def forward(self, x):
        self.dssm.mode = self.mode
        return self.dssm(x)


class SASRecPairwise(torch.nn.Module):
    """Lets MatchTrainer(mode=1) train torch-rechub's SASRec.

    SASRec.forward returns per-position (B, L) logits for the pos/neg sequences;
    MatchTrainer's pair-wise BPRLoss wants 1-D scores. This wrapper draws one
    uniform random negative per position each batch (re-drawn when it equals the
    positive), keeps the non-padding positions and flattens them. Nothing else.
    """

    def __init__(self, sasrec: SASRec, n_items: int):
        super().__init__()
        self.sasrec = sasrec
        self.n_items = n_items

    def forward(self, x):
        pos = x["pos"]
        neg = torch.randint(1, self.n_items + 1, pos.shape, device=pos.device)
        neg = torch.where(neg == pos, neg % self.n_items + 1, neg).masked_fill(pos == 0, 0)
        pos_logits, neg_logits = self.sasrec({"seq": x["seq"], "pos": pos, "neg": neg})
        keep = pos != 0
        return pos_logits[keep], neg_logits[keep]


def run_sasrec(run: Run, data: Path, workdir: Path) -> dict[str, np.ndarray]:
    meta, inter = read_recall(data)
    n_users, n_items = int(meta["n_users"]), int(meta["n_items"])
    embed_dim = run.get("embed_dim", 64)
    max_len = run.get("max_len", meta.get("max_len", 50))
    num_blocks, num_heads = run.get("num_blocks", 2), run.get("num_heads", 1)
    dropout = run.get("dropout", 0.2)
    bs, epochs = run.get("batch_size", 128), run.get("epochs", 1)
    optimizer_params = {"lr": run.get("learning_rate", 1e-3), "weight_decay": run.get("weight_decay", 0.0)}

    start = time.perf_counter()
    hist = user_histories(inter, n_users)
    inputs = [h[:-1] for h in hist if len(h) >= 2]
    targets = [h[1:] for h in hist if len(h) >= 2]
    # post-padding: SASRec.user_tower reads the output at index (#non-zero - 1), i.e. it expects the items first
    x_train = {
        "seq": pad_sequences(inputs, maxlen=max_len, padding="post", truncating="pre").astype(np.int64),
        "pos": pad_sequences(targets, maxlen=max_len, padding="post", truncating="pre").astype(np.int64),
    }
    y_train = np.zeros(len(inputs), dtype=np.float32)  # MatchTrainer unpacks (x, y); pair-wise mode ignores y
    train_dl = DataLoader(TorchDataset(x_train, y_train), batch_size=bs, shuffle=True)
    train_dl = no_singleton_batch(train_dl, run)  # SASRec.seq_forward squeezes, so a 1-row batch would lose its batch axis
    seq = SequenceFeature("seq", vocab_size=n_items + 1, embed_dim=embed_dim, pooling="concat", padding_idx=0)
    pos = SequenceFeature("pos", vocab_size=n_items + 1, embed_dim=embed_dim, pooling="concat", shared_with="seq", padding_idx=0)
    neg = SequenceFeature("neg", vocab_size=n_items + 1, embed_dim=embed_dim, pooling="concat", shared_with="seq", padding_idx=0)
    sasrec = SASRec(features=[seq, pos, neg], max_len=max_len, dropout_rate=dropout, num_blocks=num_blocks, num_heads=num_heads)
    model = SASRecPairwise(sasrec, n_items)
    run.prep_s = time.perf_counter() - start

    trainer = MatchTrainer(model, mode=1, optimizer_params=optimizer_params, n_epoch=epochs, device="cpu", model_path=str(workdir))
    timed_fit(trainer, run, train_dl)
    n_seq = len(inputs) - (1 if train_dl.drop_last else 0)
    run.train_samples = n_seq * epochs
    run.extra["train_positions"] = int((x_train["pos"] != 0).sum())
    run.notes.extend([
        "torch-rechub 0.9.0 ships no SASRec training example or sequence builder; its SASRec.item_feature (in-batch) branch is broken "
        "(reads a missing .embedding attribute), so the model's own pos/neg-sequence path is used",
        f"one training sequence per user with >=2 training events ({len(inputs)}): input = training events[:-1], "
        "positives = training events[1:], both the last max_len, post-padded with torch-rechub pad_sequences; the user's last event is never used",
        "MatchTrainer(mode=1): BPRLoss, -log sigmoid(pos - neg) per non-padding position, one uniform random negative per position re-drawn each batch "
        "(the paper uses BCE on pos/neg; torch-rechub's trainer has no per-position BCE), via the thin SASRecPairwise wrapper",
        "SASRec(features=[seq, pos, neg] SequenceFeature pooling='concat', padding_idx=0, shared item table)",
    ])

    # user vector = SASRec.user_tower on the full training history (last max_len), item vector = the shared item embedding
    sasrec.eval()
    sasrec.mode = "user"
    full = pad_sequences(hist, maxlen=max_len, padding="post", truncating="pre").astype(np.int64)
    out = []
    with torch.no_grad():
        for chunk in range(0, n_users, 1024):
            batch = torch.from_numpy(full[chunk:chunk + 1024])
            if batch.shape[0] == 1:  # seq_forward squeezes the batch axis of a 1-row batch
                batch = torch.cat([batch, batch])
                out.append(sasrec.user_tower({"seq": batch})[:1])
            else:
                out.append(sasrec.user_tower({"seq": batch}))
    users = torch.cat(out).numpy()
    items = sasrec.item_emb.embed_dict["seq"].weight.detach()[1:n_items + 1].numpy()
    run.notes.append("user vector = SASRec.user_tower (mode='user') at the last history position; item vectors = the shared 'seq' embedding table (what training scores against)")
    return {"user_vectors": users, "item_vectors": items}


RUNNERS = {"deepfm": run_ranking, "dcnv2": run_ranking, "mmoe": run_mmoe, "dssm": run_dssm, "sasrec": run_sasrec}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, choices=MODELS)
    parser.add_argument("--data", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--config", default="{}", help="JSON object of hyper-parameters")
    args = parser.parse_args(argv)
    config = json.loads(args.config)
    args.out.mkdir(parents=True, exist_ok=True)
    run = Run(args.model, config, args.out)
    if "num_threads" in config:
        torch.set_num_threads(int(run.get("num_threads")))
    seed_everything(int(run.get("seed", 2022)))
    with tempfile.TemporaryDirectory(prefix="trh-") as workdir:  # the trainers save model.pth here
        arrays = RUNNERS[args.model](run, args.data, Path(workdir))
    unused = sorted(set(config) - set(run.used) - {"seed", "num_threads"})
    if unused:
        run.notes.append(f"config keys not used by this model: {unused}")
    run.write(arrays)
    print(json.dumps({k: v for k, v in json.loads((args.out / "result.json").read_text()).items() if k != "notes"}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

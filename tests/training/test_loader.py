"""SequenceBatches: batch contents, determinism, epoch plans, bucketing, round-2 sampling, signature probe."""

import os

import numpy as np
import pytest

from aslfs.data.augment import build_augmentation
from aslfs.data.store import SequenceStore
from aslfs.data.targets import shift_right
from aslfs.training.loader import SequenceBatches, bucket_length, normalize_buckets
from aslfs.training.tables import build_tables, read_folds
from tests.training.fixtures import make_store, tiny_round1_params

MAX_LEN = 64
BUCKETS = (16, 32, 48)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    store_dir, folds_csv = make_store(tmp_path_factory.mktemp("loader"), n=40, supplemental=12, frames=(5, 90),
                                      phrases=("abc", "hello", "42 elm", "zz top", "sup one", "sup two"))
    return SequenceStore(store_dir), read_folds(folds_csv)


def table(store, round=1):
    df = store.index.copy()
    df["store_pos"] = np.arange(len(df))
    df["is_sup"] = df["is_supplemental"]
    df["score"] = np.float32(0.8)
    return df if round == 2 else df[~df.is_sup].reset_index(drop=True)


def batches(store, round=1, training=True, buckets=BUCKETS, batch_size=8, seed=0, epoch=0):
    aug = build_augmentation(round=round) if training else None
    return SequenceBatches(store, table(store, round), batch_size, training=training, round=round, augmentation=aug,
                           seed=seed, epoch=epoch, buckets=buckets, max_len=MAX_LEN, workers=0)


def test_bucket_helpers():
    assert normalize_buckets([384, 96, 160, 500, 96], 384) == (96, 160, 384)
    assert normalize_buckets(None, 384) is None
    assert [bucket_length(n, (96, 160, 384), 384) for n in (1, 96, 97, 384)] == [96, 96, 160, 384]
    assert bucket_length(5, None, 384) == 384


@pytest.mark.parametrize("round", [1, 2])
def test_batch_contents(data, round):
    store, _ = data
    ds = batches(store, round)
    for idx in range(len(ds)):
        x, y = ds[idx]
        b, t = x["padding_mask"].shape
        assert t in BUCKETS + (MAX_LEN,)
        frames = x["padding_mask"].sum(1)
        assert t == bucket_length(int(frames.max()), ds.buckets, MAX_LEN)  # smallest bucket that fits
        assert x["landmarks"].shape == (b, t, 130, 3) and x["landmarks"].dtype == np.float32
        for i in range(b):  # valid frames first, zero pads after
            assert x["padding_mask"][i, : frames[i]].all() and not x["padding_mask"][i, frames[i]:].any()
            assert not x["landmarks"][i, frames[i]:].any()
        assert x["decoder_input_ids"].shape == (b, 33) and (x["decoder_input_ids"][:, 0] == 60).all()
        assert y["token_ids"].shape == (b, 33) and y["score"].shape == (b,)
        if round == 2:  # padded to 33 (static shapes) beyond the reference's batch length, with 0
            assert x["backward_decoder_input_ids"].shape == y["backward_token_ids"].shape == (b, 33)
            length = int((y["token_ids"] != 59).sum(1).max())
            assert not y["backward_token_ids"][:, length:].any()
        else:
            assert "backward_decoder_input_ids" not in x


def test_determinism_and_epochs(data):
    store, _ = data
    a, b = batches(store, 2, seed=3), batches(store, 2, seed=3)
    xa, ya = a[1]
    xb, yb = b[1]
    for k in xa:
        np.testing.assert_array_equal(xa[k], xb[k])
    np.testing.assert_array_equal(ya["token_ids"], yb["token_ids"])
    plan0 = [p.copy() for p in a._plan]
    a.set_epoch(1)
    assert any(len(p) != len(q) or (p != q).any() for p, q in zip(plan0, a._plan))  # a new shuffle
    c = batches(store, 2, seed=3, epoch=1)  # a run resumed at epoch 1 sees the same batches
    for p, q in zip(a._plan, c._plan):
        np.testing.assert_array_equal(p, q)
    np.testing.assert_array_equal(a[0][0]["landmarks"], c[0][0]["landmarks"])


@pytest.mark.parametrize("buckets", [BUCKETS, None])
def test_round1_plan_covers_rows_once(data, buckets):
    store, _ = data
    ds = batches(store, 1, buckets=buckets)
    n = len(ds.table)
    assert len(ds) == -(-n // 8)  # ⌈N / batch⌉, bucketing or not
    assert sorted(ds.order.tolist()) == list(range(n))


def test_bucketing_groups_similar_lengths(data):
    store, _ = data
    spread = {}
    for name, buckets in (("on", BUCKETS), ("off", None)):
        ds = batches(store, 1, buckets=buckets, batch_size=4)
        lens = ds.table["seq_len"].to_numpy()
        spread[name] = np.mean([np.ptp(lens[p]) for p in ds._plan])
    assert spread["on"] < 0.5 * spread["off"]


def test_round2_epoch_sampling(data):
    store, _ = data
    ds = batches(store, 2)
    t = ds.table
    n_ns, sup_phrases = int((~t.is_sup).sum()), t.loc[t.is_sup, "phrase"].nunique()
    assert ds.examples_per_epoch == n_ns + sup_phrases
    rows = ds.order
    assert len(rows) == n_ns + sup_phrases
    picked = t.iloc[rows]
    assert sorted(picked.index[~picked.is_sup]) == sorted(t.index[~t.is_sup])  # every training row once
    assert picked.loc[picked.is_sup, "phrase"].value_counts().eq(1).all()  # one row per supplemental phrase
    assert picked.loc[picked.is_sup, "phrase"].nunique() == sup_phrases


def test_eval_batches_are_plain(data):
    store, _ = data
    ds = batches(store, 2, training=False, batch_size=16)
    assert sorted(ds.order.tolist()) == list(range(len(ds.table)))
    lens = ds.table["seq_len"].to_numpy()[ds.order]
    assert (np.diff(lens) >= 0).all()  # sorted by length for bucketing
    x, y = ds[0]
    np.testing.assert_array_equal(x["decoder_input_ids"], shift_right(y["token_ids"]))  # no masking
    length = int((y["token_ids"] != 59).sum(1).max())  # the reference's backward length (the rest is padding)
    np.testing.assert_array_equal(x["backward_decoder_input_ids"][:, :length],
                                  shift_right(y["backward_token_ids"])[:, :length])
    x2, _ = ds[0]
    np.testing.assert_array_equal(x["landmarks"], x2["landmarks"])


def test_signature_probe(data):
    store, _ = data
    ds = batches(store, 2)
    x0, y0 = ds.batch(0)
    ds.arm_signature_probe()
    xa, ya = ds[0]
    xb, yb = ds[1]
    np.testing.assert_array_equal(xa["landmarks"], x0["landmarks"])
    b, t = x0["padding_mask"].shape
    assert xb["padding_mask"].shape == (b + 1, t + 1) and not xb["landmarks"].any()
    assert ya["token_ids"].shape[1] == yb["token_ids"].shape[1] == 33  # fixed dimensions stay fixed
    assert yb["backward_token_ids"].shape[1] == y0["backward_token_ids"].shape[1] == 33
    xc, _ = ds[1]  # probe used up: real batches again
    np.testing.assert_array_equal(xc["landmarks"], ds.batch(1)[0]["landmarks"])


def test_build_tables(data, tmp_path):
    store, folds = data
    tables = build_tables(store.index, folds, 1, 0, min_seq_len=15)
    assert len(tables) == 2  # (train, validation): the training table is also the CutMix partner pool
    train, val = tables
    assert not train.is_sup.any() and (train["fold"] != 0).all() and (train.seq_len >= 15).all()
    assert (val["fold"] == 0).all() and not val.is_sup.any()
    assert val.seq_len.min() < 15 or (store.index.seq_len < 15).sum() == 0  # validation is not filtered
    _, val_full = build_tables(store.index, folds, 1, -1)
    assert (val_full["fold"] == 0).all()
    oof = folds[["sequence_id"]].copy()
    oof["score"] = np.linspace(-0.5, 1.5, len(oof))
    train2, _ = build_tables(store.index, folds, 2, 1, min_seq_len=1, oof=oof, supplemental_score=0.5)
    assert train2.is_sup.any() and (train2.loc[train2.is_sup, "score"] == 0.5).all()
    assert train2.score.between(0, 1).all()
    with pytest.raises(Exception, match="fold 9"):
        build_tables(store.index, folds, 1, 9)


def test_trainer_draws_cutmix_partners_from_the_training_rows(data, monkeypatch):
    """The training loader the trainer builds takes its CutMix partners from the training table (docs/reference.md
    §1.8), never from validation rows: its pool is exactly the training rows, and every draw is one of them."""
    from aslfs.config import parse_params
    from aslfs.training import trainer

    store, folds = data
    p = parse_params(tiny_round1_params(1))
    train, val = build_tables(store.index, folds, 1, 0, min_seq_len=1)
    assert not set(train.store_pos) & set(val.store_pos)
    rp, model_config = trainer._check_settings(1, p.train, p.sampling, None)
    *_, batches, val_batches = trainer._build(model_config, store, train, val, 1, rp, p.train, p.augment,
                                              p.sampling, 0, 0, False)
    assert sorted(batches._partner_pos.tolist()) == sorted(train.store_pos.tolist())
    loaded = []
    monkeypatch.setattr(batches.store, "load", lambda pos: loaded.append(pos))
    rng = np.random.default_rng(0)
    for row in range(len(train)):
        draw = batches._partner_fn(row)
        assert draw is not None, f"training row {row} has no partner pool"
        for _ in range(5):
            draw(rng)
    val_pos, train_pos = set(val.store_pos.tolist()), set(train.store_pos.tolist())
    assert loaded and set(loaded) <= train_pos and not set(loaded) & val_pos


def test_shared_memory_workers_serve_the_batches_of_one_process(tmp_path):
    """``worker_transport: shared_memory``: two spawned workers serve exactly ``batch(i)`` over two epochs (batches
    left in flight at the epoch change are dropped); a batch the caller holds is never overwritten although its
    slot would be the next to reuse, and its slot returns to the ring when it is dropped; closing frees every
    shared-memory block, and a batch still held stays readable."""
    import gc
    import glob

    from tests.training.fixtures import training_batches_setup

    def assert_batch_equal(got, want):
        for g in (0, 1):
            assert got[g].keys() == want[g].keys()
            for key in got[g]:
                np.testing.assert_array_equal(got[g][key], want[g][key])

    before = set(glob.glob("/dev/shm/aslfs-*"))
    store, table, kwargs = training_batches_setup(tmp_path, n=30, seed=4)
    reference = SequenceBatches(store, table, 4, **kwargs)
    kwargs.update(workers=2, use_multiprocessing=True)
    shared = SequenceBatches(store, table, 4, worker_transport="shared_memory", max_queue_size=3, **kwargs)
    assert shared.workers == 0  # Keras reads in the main thread, from the dataset's own pool
    try:
        held = shared[0]  # lent from its slot: the slot must not be given to another batch while this lives
        slots = shared._prefetcher._slots
        held_slot = next(iter(slots.leased))
        for epoch in (0, 1):
            shared.set_epoch(epoch)
            reference.set_epoch(epoch)
            for i in range(1 - epoch, len(shared) - 2 * epoch):  # epoch 1 stops early, batches in flight
                got = shared[i]
                assert_batch_equal(got, reference.batch(i))
                del got
        assert len(shared) > 3 + 2 and held_slot not in slots.free
        assert len(slots.blocks) <= 3 + 2  # in flight, the one just taken, the one held: the ring did not grow more
        reference.set_epoch(0)
        assert_batch_equal(held, reference.batch(0))
        held = None
        gc.collect()
        assert held_slot in slots.free
        last = shared[len(shared) - 2]
    finally:
        shared.close()
    assert set(glob.glob("/dev/shm/aslfs-*")) - before == set()
    reference.set_epoch(1)
    assert_batch_equal(last, reference.batch(len(shared) - 2))  # still mapped after close, while it lives
    with pytest.raises(ValueError, match="worker_transport must be keras or shared_memory"):
        SequenceBatches(store, table, 4, worker_transport="pipes", **kwargs)


def test_shared_memory_worker_death_is_one_clear_error(tmp_path, monkeypatch):
    """A loader worker killed while it makes a batch (its task is lost with it): the wait for that batch ends in one
    clear error instead of hanging, and closing frees the blocks."""
    import glob

    from aslfs.training import prefetch
    from tests.training.fixtures import DyingStore, training_batches_setup

    monkeypatch.setattr(prefetch, "_POLL_S", 0.5)
    before = set(glob.glob("/dev/shm/aslfs-*"))
    store, table, kwargs = training_batches_setup(tmp_path, n=12, seed=0)
    kwargs.update(workers=1, use_multiprocessing=True)
    shared = SequenceBatches(DyingStore(store, tmp_path / "died"), table, 4, worker_transport="shared_memory",
                             max_queue_size=2, **kwargs)
    try:
        with pytest.raises(RuntimeError, match="a loader worker process died"):
            shared[0]
    finally:
        shared.close()
    assert (tmp_path / "died").exists()
    assert set(glob.glob("/dev/shm/aslfs-*")) - before == set()


def test_shared_memory_needs_room_in_dev_shm(tmp_path, monkeypatch):
    """Too little room in /dev/shm for the ring (a container's 64 MB): one line that says how much is free, how much
    is needed for how many batches of what size, and the ways out, before any worker starts."""
    import os

    from aslfs.training import prefetch
    from tests.training.fixtures import training_batches_setup

    store, table, kwargs = training_batches_setup(tmp_path, n=12, seed=0)
    kwargs.update(workers=1, use_multiprocessing=True)
    shared = SequenceBatches(store, table, 4, worker_transport="shared_memory", max_queue_size=6, **kwargs)
    real = os.statvfs("/dev/shm")
    monkeypatch.setattr(prefetch.os, "statvfs", lambda root: os.statvfs_result(
        (real.f_bsize, 4096, 1 << 14, 1 << 8, 1 << 8, 0, 0, 0, 0, 255)))  # 1 MiB free
    need = 8 * 4 * (64 * (130 * 3 * 4 + 1) + 4096)  # 6 in flight + 2, batches of 4 × 64 frames
    try:
        with pytest.raises(RuntimeError) as err:
            shared[0]
        assert shared._prefetcher._pool is None  # nothing started
    finally:
        shared.close()
    message = str(err.value)
    assert "\n" not in message and message.startswith("/dev/shm has 1 MB free")
    assert f"needs about {need / 2**20:.0f} MB (8 batches of 4 × 64 frames)" in message
    assert "--shm-size" in message and "worker_transport: keras" in message


def test_slot_writer_stacks_in_place_and_starts_afresh_when_outgrown(monkeypatch):
    """The worker side of a slot, in process: the arrays handed out for stacking are the slot's own memory (placed
    without a copy) and the block is reserved for a whole batch at max_len frames; when the small arrays outgrow
    that reservation, the batch is written afresh into one larger block and the block made on the way is freed."""
    import glob

    from aslfs.training import prefetch

    names = f"aslfs-{os.getpid()}-test{os.urandom(3).hex()}-"
    monkeypatch.setattr(prefetch, "_NAMES", names)
    monkeypatch.setattr(prefetch, "_MAPPED", {})
    rng = np.random.default_rng(0)

    def write(y_cols: int):
        writer = prefetch._SlotWriter(0, None, max_len=8)
        land = writer("landmarks", (2, 4, 130, 3), np.float32)
        land[...] = rng.normal(size=land.shape)
        x = {"landmarks": land, "padding_mask": np.ones((2, 4), bool)}
        y = {"token_ids": rng.integers(0, 60, (2, y_cols)).astype(np.int32)}
        want = {k: np.array(v) for k, v in {**x, **y}.items()}
        in_place = np.shares_memory(land, np.ndarray((writer.block.size,), np.uint8, buffer=writer.block.buf))
        layout = writer.place(x, y)
        got = {k: np.ndarray(shape, np.dtype(dtype), buffer=writer.block.buf, offset=start).copy()
               for _, k, dtype, shape, start in layout}
        for k in want:
            np.testing.assert_array_equal(got[k], want[k])
        return writer, layout, in_place

    try:
        writer, layout, in_place = write(y_cols=33)
        assert in_place and layout[0][4] == 0  # landmarks stacked at the slot's start, not copied there
        assert writer.block.size == prefetch.batch_bytes(2, 8, 130 * 3 * 4 + 1)
        prefetch._MAPPED.clear()
        writer.block.close()
        os.unlink(f"/dev/shm/{writer.block.name.lstrip('/')}")  # (made untracked, as for the main process to own)
        writer, layout, _ = write(y_cols=5000)  # 40 kB of tokens: more than the 4 KiB a row reserved
        assert writer.block.size >= 2 * 4 * 130 * 3 * 4 + 2 * 5000 * 4
        assert glob.glob(f"/dev/shm/{names}*") == [f"/dev/shm/{writer.block.name.lstrip('/')}"]
    finally:
        for path in glob.glob(f"/dev/shm/{names}*"):
            os.unlink(path)

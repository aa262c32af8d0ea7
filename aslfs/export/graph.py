"""The inference graph of the submission: N trained models in one ``keras.ops`` function (docs/reference.md §7.2).

:class:`EnsembleGraph` maps one raw sequence (float32 ``(T, 390)`` in ``SELECTED_COLUMNS`` order, NaN = missing) to
the competition's output rows. Every piece of math comes from the shared code, so the exported file computes what
the stages and the training compute:

1. **Normalisation** — :func:`aslfs.data.normalize.global_normalize` with ``xp=keras.ops`` (the ``normalize``
   stage's own function).
2. **Time resize** above ``max_len`` frames (384 in the reference) to exactly ``max_len``, in the training mode
   (``linear``: ``keras.ops.image.resize`` bilinear without antialias on the ``(T, 130)`` "image", equal to
   :func:`aslfs.data.sample.resize_time` ``linear``; ``nearest``: frame ``⌊i·T/L⌋``). Shorter sequences run at their
   own length, unpadded and without a padding mask (batch 1).
3. **Encoders** — ``member.encode(landmarks, None, training=False)`` per member (the model's per-part
   normalisation is inside it); the confidence logits are averaged over the members, then the sigmoid is taken.
4. **Greedy decoding** — :func:`aslfs.decoding.greedy_attention_decode` over all members' decoders (logits averaged at every
   step, one shared token, KV caches, early stop). The encoder outputs are zero-padded to ``max_len`` and masked
   first, so that the loop has static shapes (TFLite re-plans a dynamic loop body at every step); the masked frames
   get zero attention, so the logits are those of the unpadded sequence.
5. **Output rows** — one rule: the averaged step logits of the steps that ran, up to, not including, the first end
   id, at most ``max_steps - 1`` (32) rows; ``argmax`` of each row is the token (ids >= 59 read as nothing). With
   ``force_steps`` = n exactly n steps run, so at most n rows come out. (The reference keeps all 33 rows when
   no end id comes; a training target never has a character in its 33rd slot, so the contract's L <= 32 loses
   nothing a trained model can mean.)
6. **Post-processing** (:meth:`EnsembleGraph.serve` only): fewer than ``min_frames`` frames or confidence below
   ``confidence_threshold`` → the one-hot rows of ``"2 a-e -aroe"``; the encoders do not run below ``min_frames``.

:meth:`EnsembleGraph.diagnose` runs the same graph without the rule and reports the raw rows, the confidence and
whether the rule fires (the exported ``diagnostics`` signature: evaluation reports raw and post-processed scores from
one call). Sequences shorter than ``min_model_frames`` are padded internally (masked) so that the encoders always run.

The graph's entry points (``serve``, ``diagnose``) are traced by the TensorFlow export and also run eagerly on the
TensorFlow backend (their ``cond`` branches return different shapes, which JAX's ``cond`` does not allow). The
independent Keras reference is :func:`aslfs.export.keras_predict.keras_ensemble_predict`; members are loaded or
built by :mod:`aslfs.export.members`.
"""

from __future__ import annotations

from collections.abc import Sequence

from keras import ops

from aslfs.data.normalize import global_normalize
from aslfs.landmarks import NUM_LANDMARKS
from aslfs.vocab import DUMMY_PHRASE, END_ID, MAX_TARGET_LEN, encode

DUMMY_IDS = tuple(encode(DUMMY_PHRASE))
RESIZE_MODES = ("linear", "nearest")
HEADS = ("attention", "ctc")


def member_decoder(member):
    """The forward decoder of an ensemble member (the attribute the model names ``decoder``)."""
    decoder = getattr(member, "decoder", None)
    if decoder is None:
        raise ValueError(f"{type(member).__name__} has no 'decoder' attribute; cannot decode it")
    return decoder


def member_config(member):
    """The member's ``ModelConfig`` (``member.model_config``), or ``None`` for stand-ins without one."""
    return getattr(member, "model_config", None)


def resize_time_ops(x, length: int, mode: str = "linear"):
    """``keras.ops`` twin of :func:`aslfs.data.sample.resize_time` on ``(T, 130, 3)`` (TFLite builtins only).

    Args:
        x: float ``(T, 130, 3)``, ``T >= 1``.
        length: int. Output frames ``L``.
        mode: ``"linear"`` (half-pixel-centre linear along time) or ``"nearest"`` (frame ``⌊i·T/L⌋``).

    Returns:
        float ``(L, 130, 3)``.
    """
    if mode == "linear":
        image = ops.expand_dims(x, 0)  # (1, T, 130, 3): time is the image height, landmarks the width
        out = ops.image.resize(
            image, (length, NUM_LANDMARKS), interpolation="bilinear", antialias=False, data_format="channels_last"
        )
        return out[0]
    if mode == "nearest":
        t = ops.shape(x)[0]
        index = ops.floor_divide(ops.arange(length, dtype="int32") * ops.cast(t, "int32"), length)
        return ops.take(x, index, axis=0)
    raise ValueError(f"resize mode must be one of {RESIZE_MODES}, got {mode!r}")


class EnsembleGraph:
    """The submission's inference function over ``N`` members (``keras.ops`` only; batch 1, any ``T >= 0``).

    Args:
        members: list of trained (or untrained) fingerspelling models. Each provides
            ``encode(landmarks (1, T, 130, 3), padding_mask (1, T) bool, training=False) -> (encoder_output
            (1, T, D), confidence_logit (1,) or (1, 1) or None)`` and a ``decoder``
            (``SpeechTransformerDecoder``).
        max_len: int or ``None``. Frames above which the sequence is resized to exactly ``max_len``. Defaults to the
            members' ``config.max_len`` (384 for the reference presets).
        resize_mode: ``"linear"`` or ``"nearest"`` (the training's ``sampling.resize_mode``). Defaults to
            ``"linear"``.
        min_frames: int. Post-processing: fewer raw frames give the dummy phrase. Defaults to ``15``.
        confidence_threshold: float. Post-processing: a confidence (sigmoid of the averaged logits) below this gives
            the dummy phrase; ignored when the members have no confidence head. Defaults to ``0.15``.
        max_steps: int. Decoder steps (output slots). Defaults to ``33``.
        early_stop: bool. Stop decoding once the end id is produced. Defaults to ``True``.
        force_steps: int or ``None``. Decode exactly this many steps (benchmarks at equal work). Defaults to
            ``None``.
        min_model_frames: int. :meth:`diagnose` pads shorter sequences (masked) to this length before the encoders.
            Defaults to ``1`` (no padding).
        static_decoder_length: bool. Pad the encoder outputs (masked) to ``max_len`` frames before decoding, so
            the decoding loop has static shapes (much faster in TFLite, same logits). Defaults to ``True``.
        head: ``"attention"`` (greedy decoding of the averaged decoder logits, the reference) or ``"ctc"`` (greedy
            CTC decoding of the members' averaged CTC log-probabilities; members need ``ctc_head``; the rows are
            then one-hot). Defaults to ``"attention"``.
        count_pad_positions: bool. Greedy decoding counts a fed-back pad in later position ids (the reference's
            TensorFlow port) instead of skipping it. Defaults to ``False``.

    Example:
        >>> graph = EnsembleGraph([model_seed0, model_seed1])
        >>> rows = graph.serve(frames)  # (L, 63); rows_to_text(rows) is the phrase
    """

    def __init__(
        self,
        members: Sequence,
        max_len: int | None = None,
        resize_mode: str = "linear",
        min_frames: int = 15,
        confidence_threshold: float = 0.15,
        max_steps: int = MAX_TARGET_LEN,
        early_stop: bool = True,
        force_steps: int | None = None,
        min_model_frames: int = 1,
        static_decoder_length: bool = True,
        head: str = "attention",
        count_pad_positions: bool = False,
    ):
        self.members = list(members)
        if not self.members:
            raise ValueError("EnsembleGraph needs at least one member")
        configs = [member_config(m) for m in self.members]
        if max_len is None:
            lens = {c.max_len for c in configs if c is not None}
            if len(lens) > 1:
                raise ValueError(f"ensemble members disagree on max_len: {sorted(lens)}")
            max_len = lens.pop() if lens else 384
        if resize_mode not in RESIZE_MODES:
            raise ValueError(f"resize_mode must be one of {RESIZE_MODES}, got {resize_mode!r}")
        self.max_len = int(max_len)
        self.resize_mode = resize_mode
        self.min_frames = int(min_frames)
        self.confidence_threshold = float(confidence_threshold)
        self.max_steps = int(max_steps)
        self.early_stop = bool(early_stop)
        self.force_steps = None if force_steps is None else int(force_steps)
        self.min_model_frames = min(max(int(min_model_frames), 1), self.max_len)
        self.static_decoder_length = bool(static_decoder_length)
        if head not in HEADS:
            raise ValueError(f"head must be one of {HEADS}, got {head!r}")
        self.head = head
        self.count_pad_positions = bool(count_pad_positions)
        if head == "ctc" and any(getattr(m, "ctc_head", None) is None for m in self.members):
            raise ValueError("CTC decoding needs members with a CTC head (ModelConfig.ctc_head = True)")
        if self.max_steps < 2:
            raise ValueError(f"max_steps must be >= 2, got {self.max_steps}")
        #: Output rows at most: the characters of the longest target (``max_steps - 1`` = 32; the last slot of
        #: a training target is always the end id or pad, docs/reference.md §1.7).
        self.max_rows = self.max_steps - 1
        #: Rows at most for this graph: no more than the steps that run (module docstring, step 5)
        self.row_limit = self.max_rows if self.force_steps is None else min(self.force_steps, self.max_rows)
        self.decoders = [member_decoder(m) for m in self.members]
        vocab = {d.vocab_size for d in self.decoders}
        if len(vocab) != 1:
            raise ValueError(f"ensemble members disagree on the vocabulary size: {sorted(vocab)}")
        self.vocab_size = vocab.pop()

    # --- pieces ---

    def dummy_rows(self):
        """float32 ``(11, vocab)``: one-hot rows of the dummy phrase."""
        return ops.one_hot(ops.convert_to_tensor(DUMMY_IDS, dtype="int32"), self.vocab_size, dtype="float32")

    def preprocess(self, frames):
        """Raw ``(T, 390)`` → normalised, resized ``(T', 130, 3)`` with ``T' = min(T, max_len)``."""
        x = global_normalize(ops.cast(frames, "float32"), xp=ops)
        t = ops.shape(x)[0]
        x = ops.cond(
            ops.greater(t, self.max_len),
            lambda: resize_time_ops(x, self.max_len, self.resize_mode),
            lambda: x,
        )
        # The TFLite converter loses the static dims of a cond's result (a Conv2D on (?, ?, ?, ?) is not a builtin):
        # restate them.
        return ops.reshape(x, (-1, NUM_LANDMARKS, 3))

    def encode(self, landmarks, padding_mask=None):
        """Every member's encoder on ``(1, T, 130, 3)``: ``(encoder_outputs, confidence_logit)``.

        ``padding_mask``: bool ``(1, T)`` or ``None`` (every frame real).

        ``confidence_logit`` is the mean of the members' logits, a float32 scalar, or ``None`` without heads.
        """
        outputs, logits = [], []
        for member in self.members:
            encoder_output, confidence = member.encode(landmarks, padding_mask, training=False)
            outputs.append(encoder_output)
            if confidence is not None:
                logits.append(ops.reshape(ops.cast(confidence, "float32"), (-1,))[0])
        if logits and len(logits) != len(self.members):
            raise ValueError("some ensemble members have a confidence head and some do not")
        confidence_logit = ops.mean(ops.stack(logits)) if logits else None
        return outputs, confidence_logit

    def decode(self, encoder_outputs, padding_mask=None):
        """Greedy ensemble decoding → output rows float32 ``(L, vocab)`` (up to the first end id).

        ``padding_mask``: bool ``(1, T)`` or ``None`` (every frame real).
        """
        from aslfs.decoding import greedy_attention_decode

        masks = [padding_mask] * len(self.decoders)
        if self.static_decoder_length:
            if padding_mask is None:
                padding_mask = ops.ones((1, ops.shape(encoder_outputs[0])[1]), dtype="bool")
            encoder_outputs, masks = self._pad_to_max_len(encoder_outputs, padding_mask)
        tokens, step_logits = greedy_attention_decode(
            self.decoders,
            encoder_outputs,
            masks,
            max_steps=self.max_steps,
            early_stop=self.early_stop,
            force_steps=self.force_steps,
            count_pad_positions=self.count_pad_positions,
        )
        tokens = tokens[0]
        slots = ops.arange(self.max_steps, dtype="int32")
        length = ops.min(ops.where(ops.equal(tokens, END_ID), slots, self.row_limit))
        return step_logits[0][:length]

    def decode_ctc(self, encoder_outputs, padding_mask=None):
        """Greedy CTC decoding of the ensemble → one-hot rows float32 ``(L, vocab)``, ``L <= max_rows``.

        The members' CTC log-probabilities (``log_softmax`` of ``ctc_logits``) are averaged frame by frame, then
        :func:`aslfs.decoding.ctc_greedy_decode_ops` takes the best class per frame, merges repeats and drops
        blanks (class ``vocab_size``).
        """
        from aslfs.decoding import ctc_greedy_decode_ops

        log_probs = [ops.log_softmax(ops.cast(m.ctc_logits(e), "float32"), axis=-1)
                     for m, e in zip(self.members, encoder_outputs)]
        mean = log_probs[0] if len(log_probs) == 1 else ops.mean(ops.stack(log_probs), axis=0)
        ids, lengths = ctc_greedy_decode_ops(mean, padding_mask, blank_id=self.vocab_size)
        rows = ops.minimum(lengths[0], self.max_rows)
        return ops.one_hot(ids[0][:rows], self.vocab_size, dtype="float32")

    def _decode(self, encoder_outputs, padding_mask=None):
        if self.head == "ctc":
            return self.decode_ctc(encoder_outputs, padding_mask)
        return self.decode(encoder_outputs, padding_mask)

    def _pad_to_max_len(self, encoder_outputs, padding_mask):
        """Zero-pad every encoder output to ``(1, max_len, D)`` (static) and mask the pads.

        The decoding loop then has static shapes only. TFLite's WHILE kernel re-plans the memory of (calls
        ``AllocateTensors`` on) a loop body with dynamic tensors at *every* iteration; with static shapes it only
        copies the loop state. Masked frames get zero cross-attention weight, so the logits do not change.
        """
        t = ops.shape(padding_mask)[1]
        missing = self.max_len - t
        mask = ops.concatenate([ops.cast(padding_mask, "bool"), ops.zeros((1, missing), dtype="bool")], axis=1)
        mask = ops.reshape(mask, (1, self.max_len))
        padded = []
        for output in encoder_outputs:
            width = output.shape[-1]
            output = ops.concatenate([output, ops.zeros((1, missing, width), dtype=output.dtype)], axis=1)
            padded.append(ops.reshape(output, (1, self.max_len, width)))
        return padded, [mask] * len(padded)

    def _model_input(self, frames, pad_to: int):
        x = self.preprocess(frames)
        t = ops.shape(x)[0]
        if pad_to <= 1:
            # No padding: no mask at all (the members' batch-1 path skips every masking op).
            return ops.expand_dims(x, 0), None
        missing = ops.maximum(pad_to - t, 0)
        x = ops.concatenate([x, ops.zeros((missing, NUM_LANDMARKS, 3), dtype=x.dtype)], axis=0)
        mask = ops.less(ops.arange(ops.shape(x)[0], dtype="int32"), t)
        return ops.expand_dims(x, 0), ops.expand_dims(mask, 0)

    def _confidence(self, confidence_logit):
        if confidence_logit is None:
            return ops.convert_to_tensor(1.0, dtype="float32")
        return ops.sigmoid(confidence_logit)

    @staticmethod
    def _nonempty(frames):
        """``(T, 390)`` with one all-NaN frame substituted when ``T == 0`` (as the reference does), so that no op
        ever sees a zero-size tensor (the TFLite XNNPACK delegate fails to prepare on one)."""
        t = ops.shape(frames)[0]
        return ops.cond(
            ops.greater(t, 0),
            lambda: frames,
            lambda: ops.full((1, ops.shape(frames)[1]), float("nan"), dtype=frames.dtype),
        )

    # --- entry points ---

    def serve(self, frames):
        """The contract: raw ``(T, 390)`` → rows float32 ``(L, vocab)`` with the post-processing rule."""
        frames = ops.convert_to_tensor(frames, dtype="float32")
        t = ops.shape(frames)[0]
        frames = self._nonempty(frames)

        def model_branch():
            landmarks, mask = self._model_input(frames, 1)
            encoder_outputs, confidence_logit = self.encode(landmarks, mask)
            if confidence_logit is None:
                return self._decode(encoder_outputs, mask)
            return ops.cond(
                ops.less(self._confidence(confidence_logit), self.confidence_threshold),
                self.dummy_rows,
                lambda: self._decode(encoder_outputs, mask),
            )

        rows = ops.cond(ops.less(t, self.min_frames), self.dummy_rows, model_branch)
        return ops.reshape(rows, (-1, self.vocab_size))  # restate the static width lost by cond

    def diagnose(self, frames):
        """No post-processing: ``{"outputs": raw rows (L, vocab), "confidence": (1,), "dummy": (1,) 0/1}``.

        ``dummy`` is 1 where :meth:`serve` returns the dummy phrase instead of the raw rows.
        """
        frames = ops.convert_to_tensor(frames, dtype="float32")
        t = ops.shape(frames)[0]
        frames = self._nonempty(frames)
        landmarks, mask = self._model_input(frames, self.min_model_frames)
        encoder_outputs, confidence_logit = self.encode(landmarks, mask)
        confidence = self._confidence(confidence_logit)
        rows = self._decode(encoder_outputs, mask)
        dummy = ops.logical_or(ops.less(t, self.min_frames), ops.less(confidence, self.confidence_threshold))
        return {
            "outputs": ops.reshape(rows, (-1, self.vocab_size)),
            "confidence": ops.reshape(confidence, (1,)),
            "dummy": ops.reshape(ops.cast(dummy, "float32"), (1,)),
        }

    def normalize(self, frames):
        """Debug entry: the graph's preprocessing alone, ``(T, 390)`` → ``(T', 130, 3)``."""
        return self.preprocess(ops.convert_to_tensor(frames, dtype="float32"))

    def __call__(self, frames):
        return self.serve(frames)

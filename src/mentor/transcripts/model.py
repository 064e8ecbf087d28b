"""A small CTC recogniser with per-language bottleneck adapters (METHODS.md §3 LDA:
``head:ParameterEfficientModule``).

LDA (Language-Dependent Adapters for tail languages in streaming multilingual ASR, paper
3) adds a small adapter per language to a frozen streaming Conformer-transducer; here the
backbone is a CPU-sized stand-in ``[reconstruction]``: input projection (``dim -> hidden``,
tanh), a unidirectional (streaming) GRU, a linear CTC head over ``vocab + 1`` classes
(class 0 the blank). Each language owns two bottleneck adapters (Houlsby et al.,
"Parameter-Efficient Transfer Learning for NLP", ICML 2019): ``h + up(relu(down(h)))``,
one on the projected frames (``pre``: the language's acoustics) and one on the GRU
outputs (``post``), ``up`` initialised to zero so an untrained adapter is the identity.
``bidirectional=True`` (a non-streaming teacher, as LDA's teachers are) reads each
utterance both ways. Given ``lengths``, the GRU reads packed sequences, so padding frames
never reach the backward direction (nor anything else).
``use_adapters=False`` runs the backbone alone (language-blind), as when it is
pre-trained on all languages.
"""

from __future__ import annotations

from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from .._util.args import positive_int


class Adapter(nn.Module):
    """Residual bottleneck ``h + up(relu(down(h)))``; ``up`` zero-initialised."""

    def __init__(self, dim: int, bottleneck: int):
        super().__init__()
        self.down = nn.Linear(dim, bottleneck)
        self.up = nn.Linear(bottleneck, dim)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, h: Tensor) -> Tensor:
        return h + self.up(self.down(h).relu())


class Recogniser(nn.Module):
    """Shared backbone + per-language adapters + CTC head (module docstring)."""

    def __init__(self, dim: int, vocab: int, languages: int, hidden: int = 64,
                 layers: int = 1, bottleneck: int = 8, bidirectional: bool = False):
        super().__init__()
        for name, v in (("dim", dim), ("vocab", vocab), ("languages", languages),
                        ("hidden", hidden), ("layers", layers), ("bottleneck", bottleneck)):
            positive_int(name, v)
        self.inp = nn.Linear(dim, hidden)
        width = 2 * hidden if bidirectional else hidden
        self.gru = nn.GRU(hidden, hidden, layers, batch_first=True,
                          bidirectional=bidirectional)
        self.head = nn.Linear(width, vocab + 1)
        self.adapters = nn.ModuleList(
            nn.ModuleDict({"pre": Adapter(hidden, bottleneck),
                           "post": Adapter(width, bottleneck)}) for _ in range(languages))

    def _adapt(self, where: str, h: Tensor, language: Tensor) -> Tensor:
        out = h
        for lang in language.unique().tolist():
            m = (language == lang)[:, None, None]
            out = out.where(~m, self.adapters[lang][where](h))
        return out

    def forward(self, frames: Tensor, language: Tensor, use_adapters: bool = True,
                lengths: Tensor | None = None) -> Tensor:
        """CTC logits ``(B, T, vocab + 1)`` of ``frames`` ``(B, T, dim)`` spoken in
        ``language`` ``(B,)``, the first ``lengths[b]`` frames of each when given."""
        h = self.inp(frames).tanh()
        if use_adapters:
            h = self._adapt("pre", h, language)
        if lengths is None:
            h, _ = self.gru(h)
        else:
            packed = pack_padded_sequence(h, lengths.cpu(), batch_first=True,
                                          enforce_sorted=False)
            h, _ = pad_packed_sequence(self.gru(packed)[0], batch_first=True,
                                       total_length=frames.shape[1])
        if use_adapters:
            h = self._adapt("post", h, language)
        return self.head(h)

    def adapter_state(self, language: int) -> dict[str, Tensor]:
        """A detached copy of ``language``'s adapter weights."""
        return {k: v.detach().clone() for k, v in self.adapters[language].state_dict().items()}

    def backbone_parameters(self):
        """Every parameter outside the adapters (the part a frozen backbone keeps)."""
        return [p for n, p in self.named_parameters() if not n.startswith("adapters.")]


def count_parameters(params) -> int:
    return sum(p.numel() for p in params)

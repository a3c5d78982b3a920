"""Running training steps a chunk at a time: an eager loop, JAX's jit + scan, torch's CUDA graphs.

A runner takes the one array-API training step (:class:`~xpnet.training._step.TrainStep`)
and runs ``K`` of them in a row without waiting on the device:

- :class:`EagerRunner`: a Python loop, one step per call. Every backend has it;
  NumPy, array-api-strict, CuPy and torch on the CPU use it by default.
- :class:`JaxScanRunner`: ``jax.jit`` of ``lax.scan`` over up to 100 steps, on any
  JAX device. The step is traced once per chunk length and configuration.
- :class:`TorchGraphRunner`: for torch on CUDA, up to 100 steps captured in one CUDA
  graph over static buffers (the parameters, the optimiser state, the batch indices
  and the learning rates), then replayed. CuPy is not captured: its stream capture
  refuses cuBLAS calls (cupy/cupy#6290).

Which one runs is decided here, by :func:`select_runner`, from the backend's
:attr:`~xpnet.Backend.compiled_path` and ``compile`` (checked by
:class:`~xpnet.training.TrainSettings`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from xpnet._typing import Array, Compile
from xpnet.backend import Backend
from xpnet.training._record import Rates
from xpnet.training._step import TrainState

if TYPE_CHECKING:
    import torch

__all__ = [
    "EagerRunner",
    "JaxScanRunner",
    "Runner",
    "TorchGraphRunner",
    "compiled_runner_kind",
    "select_runner",
]

#: The most steps one compiled call runs: Ctrl-C, the progress display and the
#: divergence check wait for at most this many.
CHUNK = 100

# ``step(state, data, inputs, learning_rate) -> loss``, updating ``state`` in place;
# ``inputs`` holds one step's batch indices and its number (the counter of its draws).
Step = Callable[[TrainState, dict[str, Array], dict[str, Array], Array | float], Array]


class Runner(Protocol):
    """Runs ``K`` training steps: ``runner(state, data, inputs, rates) -> (state, losses)``.

    ``inputs`` maps names to arrays on the device whose first axis is the step:
    ``batch`` (K, B) row indices and ``step`` (K,) the steps' numbers, from which
    each step draws its own randomness on the device. ``rates`` holds the K
    learning rates, as a NumPy array (``host``) and as an array on the device
    (``device``). The returned ``losses`` has shape (K,)
    and stays on the device. A runner whose ``draws_ahead`` is true wants the
    steps' random numbers in ``inputs`` too
    (:class:`~xpnet.training._randomness.DrawnAhead`, several steps in one call);
    the others' steps draw their own, inside the compiled chunk.
    """

    name: str
    max_chunk: int
    draws_ahead: bool

    def __call__(
        self, state: TrainState, data: dict[str, Array], inputs: dict[str, Array], rates: Rates
    ) -> tuple[TrainState, Array]: ...


class EagerRunner:
    """One step per call, as the lab's loop: every backend, every device.

    Its steps' random numbers are drawn ahead by the training loop, several steps
    in one call of the generator, whose fixed cost would otherwise be paid every step.
    """

    name = "eager loop"
    max_chunk = 1
    draws_ahead = True

    def __init__(self, backend: Backend, step: Step):
        self.xp = backend.xp
        self.step = step

    def __call__(
        self, state: TrainState, data: dict[str, Array], inputs: dict[str, Array], rates: Rates
    ) -> tuple[TrainState, Array]:
        # one network's rate as a Python float; K networks' (K,) rates as a device array
        losses = [
            self.step(
                state,
                data,
                {name: a[k, ...] for name, a in inputs.items()},
                float(rate) if rate.ndim == 0 else rates.device[k, ...],
            )
            for k, rate in enumerate(rates.host)
        ]
        return state, self.xp.stack(losses)


class JaxScanRunner:
    """``jax.jit`` of ``lax.scan`` over the steps of a chunk.

    A chunk runs under JAX's transfer guard, set to refuse every transfer from the
    host: all it reads (the state, the data, the batch rows, the step numbers and the
    learning rates) is on the device before it starts, and its random numbers are
    drawn inside it.
    """

    name = "jax.jit + lax.scan"
    max_chunk = CHUNK
    draws_ahead = False

    def __init__(self, backend: Backend, step: Step):
        self.step = step

    def __call__(
        self, state: TrainState, data: dict[str, Array], inputs: dict[str, Array], rates: Rates
    ) -> tuple[TrainState, Array]:
        import jax

        with jax.transfer_guard_host_to_device("disallow_explicit"):
            stepped: tuple[TrainState, Array] = _jax_scan()(
                self.step, state, data, inputs, rates.device
            )
        return stepped


@functools.cache
def _jax_scan() -> Callable[..., tuple[TrainState, Array]]:
    """The jitted scan, built once: its cache is keyed by the (hashable) step and shapes."""
    import jax

    def scan(
        step: Step, state: TrainState, data: dict[str, Array], inputs: dict[str, Array],
        rates: Array,
    ) -> tuple[TrainState, Array]:  # fmt: skip
        def body(state: TrainState, xs: tuple[dict[str, Array], Array]) -> tuple[TrainState, Array]:
            state = jax.tree_util.tree_map(lambda leaf: leaf, state)  # fresh dicts to update
            one_step, rate = xs
            return state, step(state, data, one_step, rate)

        return jax.lax.scan(body, state, (inputs, rates))

    return jax.jit(scan, static_argnums=0)


class TorchGraphRunner:
    """Torch on CUDA: each chunk length captured once as a CUDA graph, then replayed.

    The graph reads and updates the very tensors of ``state`` (every update in the
    step is in place), the rows of ``data``, and static buffers that each call fills
    on the device: the chunk's inputs (batch indices, step numbers) and learning rates.
    """

    name = "CUDA graph"
    max_chunk = CHUNK
    draws_ahead = False

    def __init__(self, backend: Backend, step: Step):
        import torch

        self.torch = torch
        self.device = backend.device
        self.step = step
        self.graphs: dict[int, _CapturedChunk] = {}
        # Any: torch names the type of a graph's memory pool handle only privately.
        self.pool: Any = None

    def __call__(
        self, state: TrainState, data: dict[str, Array], inputs: dict[str, Array], rates: Rates
    ) -> tuple[TrainState, Array]:
        length = int(inputs["batch"].shape[0])
        chunk = self.graphs.get(length)
        if chunk is None:
            chunk = self.graphs[length] = self._capture(state, data, inputs, rates.device)
        for name, values in inputs.items():
            chunk.inputs[name].copy_(values)
        chunk.rates.copy_(rates.device)
        chunk.graph.replay()
        return state, chunk.losses.clone()

    def _capture(
        self, state: TrainState, data: dict[str, Array], inputs: dict[str, Array], rates: Array
    ) -> _CapturedChunk:
        torch = self.torch
        static = {name: values.clone() for name, values in inputs.items()}
        static_rates = rates.clone()

        def step_inputs(k: int) -> dict[str, Array]:
            return {name: values[k] for name, values in static.items()}

        # Warm up on a side stream, on copies of the state: cuBLAS and the allocator
        # initialise outside the capture, and the real parameters do not move.
        side = torch.cuda.Stream(self.device)
        side.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(side):
            scratch = _clone_tree(state)
            for _ in range(2):
                self.step(scratch, data, step_inputs(0), static_rates[0])
        torch.cuda.current_stream(self.device).wait_stream(side)
        del scratch

        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, pool=self.pool):
            losses = torch.stack(
                [
                    self.step(state, data, step_inputs(k), static_rates[k])
                    for k in range(static["batch"].shape[0])
                ]
            )
        self.pool = graph.pool()
        return _CapturedChunk(graph, static, static_rates, losses)


class _CapturedChunk:
    def __init__(
        self, graph: torch.cuda.CUDAGraph, inputs: dict[str, Array], rates: Array, losses: Array
    ):
        self.graph, self.inputs, self.rates, self.losses = graph, inputs, rates, losses


def _clone_tree(tree: Any) -> Any:
    # Any: a state's nested dicts of tensors, or, in the recursion, one tensor.
    if isinstance(tree, dict):
        return {key: _clone_tree(value) for key, value in tree.items()}
    return tree.clone()


def compiled_runner_kind(backend: Backend) -> type[JaxScanRunner] | type[TorchGraphRunner] | None:
    """The runner of the backend's compiled path (:attr:`xpnet.Backend.compiled_path`), or
    None where it has none."""
    if backend.compiled_path == "jit":
        return JaxScanRunner
    if backend.compiled_path == "cuda graph":
        return TorchGraphRunner
    return None


def select_runner(backend: Backend, step: Step, compile: Compile = "auto") -> Runner:
    """The runner for ``compile`` (checked by :class:`~xpnet.training.TrainSettings`) on
    ``backend``: the compiled one where there is one and ``compile`` is not False.

    Raises
    ------
    ValueError
        If the backend is lazy (Dask), whose training graph would grow with every step.
    """
    if backend.lazy:
        raise ValueError(
            f"backend {backend.name!r} is lazy: each training step would add to one task "
            "graph that grows with every step (minutes for what NumPy trains in a second); "
            "compute the data to NumPy first (Dask: X.compute(), y.compute()) and train with "
            "backend='numpy', then predict on lazy arrays with TwoLayerNet.load(path, "
            f"backend={backend.name})"
        )
    kind = compiled_runner_kind(backend)
    if compile is False or kind is None:
        return EagerRunner(backend, step)
    return kind(backend, step)

"""Inspection of an ExecuTorch program (``.pte``) before ExecuTorch loads it: the flatbuffer read by
``pte_format.py`` (no ExecuTorch code); only the methods, delegate and portable operators our lowering writes, each
operator called with the argument kinds its schema takes, data segments inside the file.
"""

from pathlib import Path
from typing import Dict, Tuple

from .inspection_readers import MAX_BINARY_BYTES, read_limited, refuse, regular_file, show

# ExecuTorch runs only the kernels and backends the app (here: the pip wheel) linked: an operator is looked up by
# name in the kernel registry, a delegate's payload is handed to the backend its id names. So what is checked is
# that the program names nothing but what our lowering writes: methods `forward` and the constant `rvm_metadata`,
# the XNNPACK delegate, and the portable operators it leaves outside the delegate (collected from our exports).
PTE_METHODS = frozenset({"forward", "rvm_metadata"})
PTE_DELEGATES = frozenset({"XnnpackBackend"})
# The operators and the EValue kinds of each one's arguments (its ATen ``.out`` schema, then the out tensor again
# as the emitter writes it): a portable kernel reads an argument with ``toInt()``, ``toTensor()``... and aborts the
# process when the kind is another (found by fuzzing). Kinds are the KernelTypes tags of program.fbs.
_N, _I, _B, _D, _T, _IL, _TL = 1, 2, 3, 4, 5, 7, 10
PTE_CALLS: Dict[str, Tuple[frozenset, ...]] = {
    name: tuple(frozenset(kinds) for kinds in args)
    for name, args in {
        "aten::alias_copy.out": ([_T], [_T], [_T]),
        "aten::avg_pool2d.out": ([_T], [_IL], [_IL], [_IL], [_B], [_B], [_I, _N], [_T], [_T]),
        "aten::convolution.out": ([_T], [_T], [_T, _N], [_IL], [_IL], [_IL], [_B], [_IL], [_I], [_T], [_T]),
        "aten::expand_copy.out": ([_T], [_IL], [_B], [_T], [_T]),
        "aten::full.out": ([_IL], [_I, _D, _B], [_T], [_T]),
        "aten::mean.out": ([_T], [_IL, _N], [_B], [_I, _N], [_T], [_T]),
        "aten::split_with_sizes_copy.out": ([_T], [_IL], [_I], [_TL], [_TL]),
        "dim_order_ops::_to_dim_order_copy.out": ([_T], [_B], [_IL, _N], [_T], [_T]),
    }.items()
}
PTE_OPERATORS = frozenset(PTE_CALLS)


def inspect(path: Path) -> None:
    from .pte_format import PteError, read_pte

    regular_file(path, path)
    data = read_limited(path, path, MAX_BINARY_BYTES)
    try:
        program = read_pte(data)
    except PteError as exc:
        raise refuse(path, str(exc))
    for name, method in program.methods.items():
        if name not in PTE_METHODS:
            raise refuse(path, f"method {show(name)} is not one an RVM program has (forward, rvm_metadata)")
        for delegate in method.delegates:
            if delegate not in PTE_DELEGATES:
                raise refuse(path, f"delegate {show(delegate)} is not XnnpackBackend, the only backend an RVM "
                              "program is lowered to")  # fmt: skip
        for operator in method.operators:
            if operator not in PTE_OPERATORS:
                raise refuse(path, f"operator {show(operator)} is not one our ExecuTorch programs call")
        for callee, kinds in method.calls:
            expected = PTE_CALLS.get(callee)
            if expected is None:  # a delegate: XNNPACK takes tensors only
                if any(kind != _T for kind in kinds):
                    raise refuse(path, f"a call of delegate {show(callee)} passes a value that is not a tensor")
            elif len(kinds) != len(expected) or any(k not in e for k, e in zip(kinds, expected, strict=True)):
                raise refuse(path, f"a call of {show(callee)} passes arguments of kinds {list(kinds)}, not its "
                              "schema's")  # fmt: skip
    base, end = program.header["segment_base_offset"], len(data)
    for offset, size in program.segments:
        if base + offset + size > end:
            raise refuse(path, f"a data segment ({size} bytes at {base + offset}) runs past the end of the file")

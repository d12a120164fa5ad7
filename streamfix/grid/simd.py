"""Eight samples at a time: the table-lookup bodies of the fused slicing kernels as numba intrinsics.

A slicing kernel's inner loop reads table entries at indices that depend on each sample's code
(a gather). Neither LLVM nor GCC vectorises such a loop on their own here (their cost models
keep gathers scalar), so these intrinsics emit LLVM's target-independent
``llvm.masked.gather`` for :data:`LANES` samples at once: one ``vgatherdps`` per lane group on
x86 with AVX2, plain loads elsewhere. Each intrinsic reads and writes ``LANES`` consecutive
samples starting at index ``x`` (the caller loops in steps of ``LANES`` and finishes the row's
tail in scalar code). The math is exactly that of the scalar loops in
:mod:`streamfix.grid.kernels`; the tests hold both to the grid_sample reference.

Conventions of all intrinsics (1-D arrays whose elements are contiguous; checked at typing time):

* ``row``: float32 value tables of one output row, already interpolated along y, flattened;
* index arrays ``xa``/``xb`` (int32): per sample, the offset of its left/right grid column's
  table; ``wx`` (float32): the weight of the right one;
* code planes are uint8 or uint16 rows; results are rounded, clamped to ``[0, top]``.

numba's on-disk cache of the kernels that call these does not notice edits here (it tracks each
kernel's own source file): clear ``streamfix/grid/__pycache__`` after changing this module.
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.core.errors import TypingError
from numba.extending import intrinsic

#: samples per intrinsic call (8 float32 lanes = one 256-bit register)
LANES = 8

_F32 = ir.FloatType()
_I32 = ir.IntType(32)
_I64 = ir.IntType(64)
_VF = ir.VectorType(_F32, LANES)
_VI32 = ir.VectorType(_I32, LANES)
_VI64 = ir.VectorType(_I64, LANES)
_VPTR = ir.VectorType(ir.PointerType(_F32), LANES)
_MASK = ir.Constant(ir.VectorType(ir.IntType(1), LANES), [1] * LANES)


_CODES = (types.uint8, types.uint16)
_F32S = (types.float32,)
_I32S = (types.int32,)


def _require(*pairs: tuple[types.Type, tuple[types.Type, ...]]) -> None:
    """At typing time: each argument is a 1-D array of one of the dtypes the IR below assumes."""
    for ty, allowed in pairs:
        if not (isinstance(ty, types.Array) and ty.ndim == 1 and ty.dtype in allowed):
            raise TypingError(f"slicing intrinsic: expected a 1-D array of {'/'.join(map(str, allowed))}, got {ty}")


def _vec(value: float | int, vty: ir.VectorType) -> ir.Constant:
    return ir.Constant(vty, [value] * LANES)


def _at(context, builder, aty, arr, x):
    """Pointer to ``arr[x]``."""
    return builder.gep(context.make_array(aty)(context, builder, arr).data, [x])


def _load(builder, ptr, elty):
    """``LANES`` consecutive elements from ``ptr`` (unaligned)."""
    return builder.load(builder.bitcast(ptr, ir.PointerType(ir.VectorType(elty, LANES))), align=1)


def _splat(builder, value, vty):
    undef = ir.Constant(vty, ir.Undefined)
    one = builder.insert_element(undef, value, ir.Constant(_I32, 0))
    return builder.shuffle_vector(one, undef, ir.Constant(_VI32, [0] * LANES))


def _codes(context, builder, aty, arr, x):
    """``LANES`` codes of a uint8/uint16 row from index ``x``, as int32."""
    return builder.zext(_load(builder, _at(context, builder, aty, arr, x), ir.IntType(aty.dtype.bitwidth)), _VI32)


def _floats(context, builder, aty, arr, x):
    return _load(builder, _at(context, builder, aty, arr, x), _F32)


def _ints(context, builder, aty, arr, x):
    return _load(builder, _at(context, builder, aty, arr, x), _I32)


def _gather(builder, base, idx):
    """``base[idx]`` for a float32 pointer and an ``<LANES x i32>`` index vector."""
    fnty = ir.FunctionType(_VF, [_VPTR, _I32, _MASK.type, _VF])
    fn = cgutils.get_or_insert_function(builder.module, fnty, f"llvm.masked.gather.v{LANES}f32.v{LANES}p0")
    offset = builder.mul(builder.sext(idx, _VI64), _vec(4, _VI64))
    ptrs = builder.inttoptr(builder.add(_splat(builder, builder.ptrtoint(base, _I64), _VI64), offset), _VPTR)
    return builder.call(fn, [ptrs, ir.Constant(_I32, 4), _MASK, ir.Constant(_VF, ir.Undefined)])


def _lerp_lookup(builder, base, ia, ib, f, k=0):
    """``base[ia + k] + (base[ib + k] − base[ia + k])·f``."""
    if k:
        ia = builder.add(ia, _vec(k, _VI32))
        ib = builder.add(ib, _vec(k, _VI32))
    pa = _gather(builder, base, ia)
    return builder.fadd(pa, builder.fmul(builder.fsub(_gather(builder, base, ib), pa), f))


def _store_codes(context, builder, aty, arr, x, value, top):
    """Round ``value`` to codes clamped to ``[0, top]`` and store them at ``arr[x:x+LANES]``."""
    v = builder.fadd(value, _vec(0.5, _VF))
    zero = _vec(0.0, _VF)
    v = builder.select(builder.fcmp_ordered("<", v, zero), zero, v)
    v = builder.select(builder.fcmp_ordered(">", v, top), top, v)
    ety = ir.VectorType(ir.IntType(aty.dtype.bitwidth), LANES)
    q = builder.trunc(builder.fptosi(v, _VI32), ety)
    builder.store(q, builder.bitcast(_at(context, builder, aty, arr, x), ir.PointerType(ety)), align=1)


def _table_ptr(context, builder, aty, arr):
    return context.make_array(aty)(context, builder, arr).data


@intrinsic
def neutral_luma8(typingctx, row, y, xa, xb, wx, out, x, top):
    """``out[x+i] = row[xa+y] ⊕ row[xb+y]`` (lerp by ``wx``) for i < LANES: a neutral grid's luma."""
    _require((row, _F32S), (y, _CODES), (xa, _I32S), (xb, _I32S), (wx, _F32S), (out, _CODES))
    sig = types.void(row, y, xa, xb, wx, out, x, top)

    def codegen(context, builder, signature, args):
        row_v, y_v, xa_v, xb_v, wx_v, out_v, x_v, top_v = args
        iv = _codes(context, builder, y, y_v, x_v)
        ia = builder.add(_ints(context, builder, xa, xa_v, x_v), iv)
        ib = builder.add(_ints(context, builder, xb, xb_v, x_v), iv)
        val = _lerp_lookup(builder, _table_ptr(context, builder, row, row_v), ia, ib,
                           _floats(context, builder, wx, wx_v, x_v))
        _store_codes(context, builder, out, out_v, x_v, val, _splat(builder, top_v, _VF))
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def neutral_chroma8(typingctx, row, yb, ca, cb, cf, u, v, out_u, out_v, j, mid, top):
    """``mid + g·(U − mid)`` and the same for V, ``g`` looked up by the block luma ``yb``."""
    _require((row, _F32S), (yb, _CODES), (ca, _I32S), (cb, _I32S), (cf, _F32S), (u, _CODES), (v, _CODES),
             (out_u, _CODES), (out_v, _CODES))
    sig = types.void(row, yb, ca, cb, cf, u, v, out_u, out_v, j, mid, top)

    def codegen(context, builder, signature, args):
        row_v, yb_v, ca_v, cb_v, cf_v, u_v, v_v, ou_v, ov_v, j_v, mid_v, top_v = args
        iv = _codes(context, builder, yb, yb_v, j_v)
        ia = builder.add(_ints(context, builder, ca, ca_v, j_v), iv)
        ib = builder.add(_ints(context, builder, cb, cb_v, j_v), iv)
        g = _lerp_lookup(builder, _table_ptr(context, builder, row, row_v), ia, ib,
                         _floats(context, builder, cf, cf_v, j_v))
        midv = _splat(builder, mid_v, _VF)
        topv = _splat(builder, top_v, _VF)
        for src_ty, src_v, dst_ty, dst_v in ((u, u_v, out_u, ou_v), (v, v_v, out_v, ov_v)):
            c = builder.uitofp(_codes(context, builder, src_ty, src_v, j_v), _VF)
            val = builder.fadd(midv, builder.fmul(g, builder.fsub(c, midv)))
            _store_codes(context, builder, dst_ty, dst_v, j_v, val, topv)
        return context.get_dummy_value()

    return sig, codegen


def _chroma_for_luma(context, builder, aty, arr, x, half):
    """The chroma codes under ``LANES`` luma samples from ``x``, as float32: the same index, or
    (``half``: 2× horizontal subsampling) ``LANES / 2`` codes from ``x / 2``, each used twice."""
    if not half:
        return builder.uitofp(_codes(context, builder, aty, arr, x), _VF)
    ety = ir.IntType(aty.dtype.bitwidth)
    j = builder.ashr(x, ir.Constant(x.type, 1))
    hv = ir.VectorType(ety, LANES // 2)
    codes = builder.load(builder.bitcast(_at(context, builder, aty, arr, j), ir.PointerType(hv)), align=1)
    pairs = builder.shuffle_vector(codes, ir.Constant(hv, ir.Undefined),
                                   ir.Constant(_VI32, [i // 2 for i in range(LANES)]))
    return builder.uitofp(builder.zext(pairs, _VI32), _VF)


def _affine_luma(half: bool):
    """A general grid's luma: tables of 3 per (column, code) ``[c0·y + c3, c1, c2]``; ``u``/``v``
    the chroma rows under this luma row (``half``: horizontally subsampled 2×, else full width)."""

    @intrinsic
    def affine_luma8(typingctx, row, y, u, v, xa, xb, wx, out, x, top):
        _require((row, _F32S), (y, _CODES), (u, _CODES), (v, _CODES), (xa, _I32S), (xb, _I32S), (wx, _F32S),
                 (out, _CODES))
        sig = types.void(row, y, u, v, xa, xb, wx, out, x, top)

        def codegen(context, builder, signature, args):
            row_v, y_v, u_v, v_v, xa_v, xb_v, wx_v, out_v, x_v, top_v = args
            iv = builder.mul(_codes(context, builder, y, y_v, x_v), _vec(3, _VI32))
            ia = builder.add(_ints(context, builder, xa, xa_v, x_v), iv)
            ib = builder.add(_ints(context, builder, xb, xb_v, x_v), iv)
            f = _floats(context, builder, wx, wx_v, x_v)
            base = _table_ptr(context, builder, row, row_v)
            p0, p1, p2 = (_lerp_lookup(builder, base, ia, ib, f, k) for k in range(3))
            acc = builder.fadd(p0, builder.fmul(p1, _chroma_for_luma(context, builder, u, u_v, x_v, half)))
            acc = builder.fadd(acc, builder.fmul(p2, _chroma_for_luma(context, builder, v, v_v, x_v, half)))
            _store_codes(context, builder, out, out_v, x_v, acc, _splat(builder, top_v, _VF))
            return context.get_dummy_value()

        return sig, codegen

    affine_luma8.__doc__ = _affine_luma.__doc__
    return affine_luma8


#: general luma, chroma at full width (4:4:4) / at half width (4:2:0, 4:2:2)
affine_luma8 = _affine_luma(half=False)
affine_luma8_half = _affine_luma(half=True)

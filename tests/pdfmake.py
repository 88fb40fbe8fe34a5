"""PDFs made by hand for tests: A4 pages drawn by content-stream operators, with a Chinese
font every PDF reader has (STSong-Light with the UniGB-UCS2-H encoding, not embedded)."""

from __future__ import annotations

from io import BytesIO


def cjk_pdf(pages: list[list[str]]) -> bytes:
    """A PDF of A4 pages, each drawn by the content-stream operators given (``/F1`` is the
    Chinese font; see :func:`text_op`)."""
    from pypdf import PdfWriter
    from pypdf.generic import (
        ArrayObject,
        DecodedStreamObject,
        DictionaryObject,
        NameObject,
        NumberObject,
        TextStringObject,
    )

    w = PdfWriter()
    desc = DictionaryObject({
        NameObject("/Type"): NameObject("/FontDescriptor"), NameObject("/FontName"): NameObject("/STSong-Light"),
        NameObject("/Flags"): NumberObject(6), NameObject("/ItalicAngle"): NumberObject(0),
        NameObject("/FontBBox"): ArrayObject([NumberObject(v) for v in (-25, -254, 1000, 880)]),
        NameObject("/Ascent"): NumberObject(880), NameObject("/Descent"): NumberObject(-120),
        NameObject("/CapHeight"): NumberObject(880), NameObject("/StemV"): NumberObject(93),
    })
    cid = DictionaryObject({
        NameObject("/Type"): NameObject("/Font"), NameObject("/Subtype"): NameObject("/CIDFontType0"),
        NameObject("/BaseFont"): NameObject("/STSong-Light"), NameObject("/DW"): NumberObject(1000),
        NameObject("/CIDSystemInfo"): DictionaryObject({
            NameObject("/Registry"): TextStringObject("Adobe"), NameObject("/Ordering"): TextStringObject("GB1"),
            NameObject("/Supplement"): NumberObject(2)}),
        NameObject("/FontDescriptor"): w._add_object(desc),
    })
    font = w._add_object(DictionaryObject({
        NameObject("/Type"): NameObject("/Font"), NameObject("/Subtype"): NameObject("/Type0"),
        NameObject("/BaseFont"): NameObject("/STSong-Light-UniGB-UCS2-H"),
        NameObject("/Encoding"): NameObject("/UniGB-UCS2-H"),
        NameObject("/DescendantFonts"): ArrayObject([w._add_object(cid)]),
    }))
    for ops in pages:
        page = w.add_blank_page(595, 842)
        page[NameObject("/Resources")] = DictionaryObject(
            {NameObject("/Font"): DictionaryObject({NameObject("/F1"): font})})
        stream = DecodedStreamObject()
        stream.set_data("\n".join(ops).encode("latin-1"))
        page[NameObject("/Contents")] = w._add_object(stream)
    buf = BytesIO()
    w.write(buf)
    return buf.getvalue()


def text_op(x: float, y: float, s: str, size: int = 12) -> str:
    """The operators that draw ``s`` at (``x``, ``y``) in the Chinese font."""
    return f"BT /F1 {size} Tf {x} {y} Td <{s.encode('utf-16-be').hex()}> Tj ET"


def lines_page(lines: list[str], size: int = 14, leading: int = 22) -> list[str]:
    """A page of ``lines`` one under another from the top left."""
    return [f"BT /F1 {size} Tf 60 780 Td {leading} TL",
            *[f"<{ln.encode('utf-16-be').hex()}> Tj T*" for ln in lines], "ET"]

"""Click's own text in Chinese: "Usage:", "Options:", "Show this message and exit.", its errors.

Click marks these strings for gettext (``from gettext import gettext as _`` in each module) but
ships no catalogue, and gettext picks a catalogue from the process's locale, which office PCs
set in many ways. So the catalogue is here, as a table, and :func:`install` points the ``_`` and
``ngettext`` of click's modules at it: the text is Chinese whatever the locale. A string not in
the table stays as click wrote it. ``tests/test_cli.py`` checks help and error output.
"""

from __future__ import annotations

import importlib

import click

ZH: dict[str, str] = {
    "Usage:": "用法：",
    "Options": "选项",
    "Commands": "命令",
    "Positional arguments": "位置参数",
    "Show this message and exit.": "显示本帮助并退出。",
    "Show the version and exit.": "显示版本并退出。",
    "%(prog)s, version %(version)s": "%(prog)s，版本 %(version)s",
    "Try '{command} {option}' for help.": "运行 '{command} {option}' 查看帮助。",
    "Error: {message}": "错误：{message}",
    "Invalid value for {param_hint}: {message}": "参数 {param_hint} 的值无效：{message}",
    "Invalid value: {message}": "值无效：{message}",
    "Missing argument": "缺少参数",
    "Missing option": "缺少选项",
    "Missing parameter": "缺少参数",
    "Missing parameter: {param_name}": "缺少参数：{param_name}",
    "Missing {param_type}": "缺少{param_type}",
    "Missing command.": "缺少命令。",
    "No such command {name!r}.": "没有命令 {name!r}。",
    "No such option {name!r}.": "没有选项 {name!r}。",
    "Option {name!r} does not take a value.": "选项 {name!r} 不接受取值。",
    "Option {name!r} requires an argument.": "选项 {name!r} 需要一个取值。",
    "Option {name!r} requires {nargs} arguments.": "选项 {name!r} 需要 {nargs} 个取值。",
    "Got unexpected extra argument ({args})": "多余的参数（{args}）",
    "Got unexpected extra arguments ({args})": "多余的参数（{args}）",
    "Did you mean {possibility}?": "您是不是要输入 {possibility}？",
    "(Did you mean one of: {possibilities}?)": "（您是不是要输入其中之一：{possibilities}？）",
    "Argument {name!r} takes {nargs} values.": "参数 {name!r} 需要 {nargs} 个取值。",
    "Takes {nargs} values but 1 was given.": "需要 {nargs} 个取值，只给了 1 个。",
    "Takes {nargs} values but {len} were given.": "需要 {nargs} 个取值，给了 {len} 个。",
    "{value!r} is not a valid {number_type}.": "{value!r} 不是有效的{number_type}。",
    "{value!r} is not {choice}.": "{value!r} 不是 {choice}。",
    "{value!r} is not one of {choices}.": "{value!r} 不在可选值 {choices} 之中。",
    "{value} is not in the range {range}.": "{value} 不在范围 {range} 之内。",
    "{value!r} does not match the format {format}.": "{value!r} 不符合格式 {format}。",
    "{value!r} does not match the formats {formats}.": "{value!r} 不符合格式 {formats} 中的任何一种。",
    "{value!r} is not a valid UUID.": "{value!r} 不是有效的 UUID。",
    "Choose from:\n\t{choices}": "可选值：\n\t{choices}",
    "{name} {filename!r} does not exist.": "{name} {filename!r} 不存在。",
    "{name} {filename!r} is a file.": "{name} {filename!r} 是文件，不是文件夹。",
    "{name} {filename!r} is a directory.": "{name} {filename!r} 是文件夹，不是文件。",
    "{name} {filename!r} is not readable.": "{name} {filename!r} 无法读取。",
    "{name} {filename!r} is not writable.": "{name} {filename!r} 无法写入。",
    "{name} {filename!r} is not executable.": "{name} {filename!r} 无法执行。",
    "Could not open file {filename!r}: {message}": "无法打开文件 {filename!r}：{message}",
    "default: {default}": "默认：{default}",
    "required": "必填",
    "env var: {var}": "环境变量：{var}",
    "deprecated": "已弃用",
    "(dynamic)": "（动态）",
    "file": "文件",
    "directory": "文件夹",
    "path": "路径",
    "Aborted!": "已取消。",
    "Do you want to continue?": "是否继续？",
    "Confirm the action without prompting.": "不再询问，直接执行。",
    "Repeat for confirmation": "再输入一次以确认",
    "Error: The two entered values do not match.": "错误：两次输入不一致。",
    "Error: invalid input": "错误：输入无效",
    "Press any key to continue...": "按任意键继续……",
    "unknown error": "未知错误",
}

_MODULES = ("core", "decorators", "exceptions", "formatting", "parser", "types", "termui", "utils")


def gettext(message: str) -> str:
    """The Chinese of one of click's strings, or the string itself."""
    return ZH.get(message, message)


def ngettext(singular: str, plural: str, n: int) -> str:
    """The Chinese of one of click's singular/plural strings (Chinese has one form)."""
    return gettext(singular if n == 1 else plural)


# Names of click's parameter types, shown in errors ("不是有效的整数") and as metavars (-k 整数).
_TYPE_NAMES = {"INT": "整数", "FLOAT": "数字", "STRING": "文本"}
_RANGE_NAMES = {"IntRange": "整数", "FloatRange": "数字"}
OPTIONS_METAVAR = "[选项]"
SUBCOMMAND_METAVAR = "命令 [参数]..."


def display_width(text: str) -> int:
    """Columns ``text`` takes in a terminal: CJK characters take two (click counts one, which
    misaligns help columns holding Chinese)."""
    from unicodedata import east_asian_width

    from click._compat import strip_ansi

    return sum(2 if east_asian_width(ch) in "WF" else 1 for ch in strip_ansi(text))


def install() -> None:
    """Make click's modules look their strings up in :data:`ZH`, name its types in Chinese and
    measure help columns by display width."""
    import click.formatting
    import click.types

    for attr, zh in _TYPE_NAMES.items():
        getattr(click.types, attr).name = zh
    for attr, zh in _RANGE_NAMES.items():
        getattr(click.types, attr).name = zh
    click.formatting.term_len = display_width
    for name in _MODULES:
        module = importlib.import_module(f"click.{name}")
        if hasattr(module, "_"):
            module._ = gettext
        if hasattr(module, "ngettext"):
            module.ngettext = ngettext

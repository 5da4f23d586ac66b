"""The Jinja environment shared by the report and the model card: the package's templates with
the number and label filters of ``captune.report.text``.

    html = template_env(autoescape=True).get_template("report.html.j2").render(**ctx)
"""

from __future__ import annotations

from captune.report.run import when
from captune.report.text import interval, label, num, p_value, percent, signed, verdict


def template_env(autoescape: bool):
    """A strict environment (an undefined name is an error, not an empty string) over ``templates/``."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("captune.report", "templates"),
        autoescape=autoescape,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters.update(
        num=num,
        signed=signed,
        percent=percent,
        interval=interval,
        p=p_value,
        label=label,
        verdict=verdict,
        when=when,
    )
    return env

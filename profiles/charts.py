"""The staleness panel's bar chart as inline SVG, rendered on the server (no script, nothing fetched)."""

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

COLOURS = {"fresh": "#2e7d32", "stale": "#f9a825", "missing": "#c62828"}
ROW, LABEL, WIDTH = 22, 190, 420


def staleness_chart(figures) -> SafeString:
    """One stacked horizontal bar per feature: fresh, stale, missing shares of eligible users."""
    height = ROW * len(figures) + 30
    rows = []
    for index, figure in enumerate(figures):
        y = index * ROW
        x = LABEL
        parts = []
        for kind in ("fresh", "stale", "missing"):
            count = getattr(figure, kind)
            width = WIDTH * count / figure.total if figure.total else 0
            if width:
                parts.append(format_html(
                    '<rect x="{}" y="{}" width="{}" height="16" fill="{}" class="bar-{}">'
                    "<title>{}: {} {}</title></rect>",
                    f"{x:.1f}", y + 2, f"{width:.1f}", COLOURS[kind], kind, figure.name, count, kind,
                ))
            x += width
        rows.append(format_html(
            '<g data-feature="{}"><text x="{}" y="{}" text-anchor="end" font-size="12">{}</text>{}</g>',
            figure.name, LABEL - 6, y + 14, figure.name, mark_safe("".join(parts)),  # noqa: S308
        ))
    legend = format_html_join("", '<rect x="{}" y="{}" width="10" height="10" fill="{}"></rect>'
                              '<text x="{}" y="{}" font-size="12">{}</text>',
                              ((LABEL + i * 90, height - 16, COLOURS[k], LABEL + i * 90 + 14, height - 7, k)
                               for i, k in enumerate(COLOURS)))
    return format_html(
        '<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="profile staleness by feature" '
        'width="{}" height="{}" id="pulse-staleness-chart">{}{}</svg>',
        LABEL + WIDTH + 10, height, mark_safe("".join(rows)), legend,  # noqa: S308
    )

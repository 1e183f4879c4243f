"""A small server-rendered chart: entered (up) and left (down) per day, as inline SVG."""

from django.utils.html import format_html, format_html_join

WIDTH, HEIGHT, BAR = 7, 16, 5


def sparkline(days: list[tuple]) -> str:
    """`days` is [(date, entered, left)], oldest first; bars scale to the busiest day."""
    if not days:
        return ""
    peak = max(1, *(max(entered, left) for _, entered, left in days))
    bars = []
    for index, (day, entered, left) in enumerate(days):
        x = index * WIDTH
        up, down = round(HEIGHT * entered / peak), round(HEIGHT * left / peak)
        bars.append((x, HEIGHT - up, BAR, up, "#2e7d32", f"{day}: {entered} entered"))
        bars.append((x, HEIGHT, BAR, down, "#c62828", f"{day}: {left} left"))
    rects = format_html_join(
        "", '<rect x="{}" y="{}" width="{}" height="{}" fill="{}"><title>{}</title></rect>', bars)
    total_in, total_out = sum(d[1] for d in days), sum(d[2] for d in days)
    return format_html(
        '<svg width="{}" height="{}" role="img" aria-label="{} entered, {} left in 14 days">{}</svg> '
        '<span class="help">+{} / −{}</span>',
        len(days) * WIDTH, HEIGHT * 2, total_in, total_out, rects, total_in, total_out)

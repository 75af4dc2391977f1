#!/usr/bin/env bash
# png.sh DIR: a PNG copy of every SVG plot in DIR, with CairoSVG (`pip install cairosvg`)
# where it is installed; without it, a note and no PNGs.
set -euo pipefail
if python3 -c "import cairosvg" 2> /dev/null; then
    for svg in "$1"/*.svg; do
        python3 -c "import cairosvg, sys; cairosvg.svg2png(url=sys.argv[1], write_to=sys.argv[2], dpi=110)" \
            "$svg" "${svg%.svg}.png" || echo "no PNG for $svg" >&2
    done
else
    echo "no PNG copies: pip install cairosvg" >&2
fi

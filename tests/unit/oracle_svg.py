"""Reads an SVG chart of hk_svg_plot back with a real XML parser
(xml.etree): its title, ticks, series and legend, as JSON.

    oracle_svg.py FILE
"""
import sys
import xml.etree.ElementTree as ET

from oracle_common import print_json

NS = "{http://www.w3.org/2000/svg}"


def floats(s):
    return [float(v) for v in s.split()]


def tick(g, axis):
    line = g.find(NS + "line")
    return {"value": float(g.get("data-value")), "label": g.find(NS + "text").text,
            "px": float(line.get("y1" if axis == "y" else "x1"))}


def main(path):
    root = ET.parse(path).getroot()
    assert root.tag == NS + "svg", root.tag
    doc = {"width": float(root.get("width")), "height": float(root.get("height")),
           "title": None, "subtitle": None, "empty": None, "series": [], "legend": []}
    for t in root.iter(NS + "text"):
        if t.get("class") in ("title", "subtitle", "empty"):
            doc[t.get("class")] = t.text
    for g in root.iter(NS + "g"):
        cls = g.get("class")
        if cls in ("yaxis", "xaxis"):
            a = cls[0]
            doc[a + "unit"] = g.get("data-unit")
            doc[a + "ticks"] = [tick(t, a) for t in g.findall(NS + "g")
                                if t.get("class") == a + "tick"]
            doc[a + "title"] = next(t.text for t in g.findall(NS + "text"))
        elif cls == "series":
            runs = [[[float(c) for c in p.split(",")] for p in pl.get("points").split()]
                    for pl in g.findall(NS + "polyline")]
            runs += [[[float(c.get("cx")), float(c.get("cy"))]] for c in g.findall(NS + "circle")]
            doc["series"].append({"index": int(g.get("data-index")),
                                  "stroke": g.get("stroke"),
                                  "dash": g.get("stroke-dasharray"),
                                  "title": g.find(NS + "title").text, "runs": runs})
        elif cls == "entry":
            doc["legend"].append({"index": int(g.get("data-index")),
                                  "label": g.find(NS + "text").text,
                                  "stroke": g.find(NS + "line").get("stroke")})
    print_json(doc)


main(sys.argv[1])

// A small time-series line chart drawn on a canvas (no library: the dashboard loads nothing from elsewhere).
"use strict";

const Chart = (() => {
  const COLORS = { line: "#2563eb", fill: "rgba(37, 99, 235, 0.10)", grid: "#e5e7eb", axis: "#6b7280", dot: "#1d4ed8" };
  const FONT = "12px system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif";
  const PAD = { left: 56, right: 16, top: 14, bottom: 30 };

  // Round step for about `count` ticks over `span`.
  function niceStep(span, count) {
    const raw = span / Math.max(1, count);
    const power = Math.pow(10, Math.floor(Math.log10(raw)));
    const unit = raw / power;
    return (unit <= 1 ? 1 : unit <= 2 ? 2 : unit <= 5 ? 5 : 10) * power;
  }

  function two(n) { return String(n).padStart(2, "0"); }
  function clock(seconds) {
    const d = new Date(seconds * 1000);
    return `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
  }
  function decimals(step) { return step >= 1 ? 0 : Math.min(3, Math.ceil(-Math.log10(step))); }

  // Draw points [{t, v}] (t in Unix seconds) with axes, grid lines and the unit on the value axis.
  function draw(canvas, points, unit) {
    const ratio = window.devicePixelRatio || 1;
    const width = canvas.clientWidth, height = canvas.clientHeight;
    if (canvas.width !== Math.round(width * ratio) || canvas.height !== Math.round(height * ratio)) {
      canvas.width = Math.round(width * ratio);
      canvas.height = Math.round(height * ratio);
    }
    const ctx = canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, width, height);
    if (points.length === 0) return;

    const plotW = width - PAD.left - PAD.right, plotH = height - PAD.top - PAD.bottom;
    let t0 = points[0].t, t1 = points[points.length - 1].t;
    if (t1 - t0 < 10) t0 = t1 - 10;
    let lo = Math.min(...points.map((p) => p.v)), hi = Math.max(...points.map((p) => p.v));
    if (hi - lo < 1e-9) { lo -= 1; hi += 1; }
    const vStep = niceStep(hi - lo, 5);
    lo = Math.floor(lo / vStep) * vStep;
    hi = Math.ceil(hi / vStep) * vStep;
    const x = (t) => PAD.left + ((t - t0) / (t1 - t0)) * plotW;
    const y = (v) => PAD.top + (1 - (v - lo) / (hi - lo)) * plotH;

    ctx.font = FONT;
    ctx.lineWidth = 1;
    ctx.strokeStyle = COLORS.grid;
    ctx.fillStyle = COLORS.axis;
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    for (let v = lo; v <= hi + vStep / 2; v += vStep) {
      const yy = Math.round(y(v)) + 0.5;
      ctx.beginPath(); ctx.moveTo(PAD.left, yy); ctx.lineTo(width - PAD.right, yy); ctx.stroke();
      ctx.fillText(`${v.toFixed(decimals(vStep))}${unit}`, PAD.left - 8, yy);
    }
    const tStep = niceStep(t1 - t0, Math.max(2, Math.floor(plotW / 90)));
    ctx.textAlign = "center";
    ctx.textBaseline = "top";
    for (let t = Math.ceil(t0 / tStep) * tStep; t <= t1; t += tStep) {
      const xx = Math.round(x(t)) + 0.5;
      ctx.beginPath(); ctx.moveTo(xx, PAD.top); ctx.lineTo(xx, PAD.top + plotH); ctx.stroke();
      ctx.fillText(clock(t), xx, PAD.top + plotH + 8);
    }

    ctx.beginPath();
    points.forEach((p, i) => (i ? ctx.lineTo(x(p.t), y(p.v)) : ctx.moveTo(x(p.t), y(p.v))));
    ctx.lineTo(x(points[points.length - 1].t), PAD.top + plotH);
    ctx.lineTo(x(points[0].t), PAD.top + plotH);
    ctx.closePath();
    ctx.fillStyle = COLORS.fill;
    ctx.fill();

    ctx.beginPath();
    points.forEach((p, i) => (i ? ctx.lineTo(x(p.t), y(p.v)) : ctx.moveTo(x(p.t), y(p.v))));
    ctx.strokeStyle = COLORS.line;
    ctx.lineWidth = 2;
    ctx.lineJoin = "round";
    ctx.stroke();

    const last = points[points.length - 1];
    ctx.beginPath();
    ctx.arc(x(last.t), y(last.v), 4, 0, 2 * Math.PI);
    ctx.fillStyle = COLORS.dot;
    ctx.fill();
  }

  return { draw };
})();

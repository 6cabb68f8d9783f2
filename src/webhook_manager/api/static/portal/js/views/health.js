// Endpoint health: per endpoint the last hour's tries, success rate, p50/p99 duration and last failure, and a
// chart of sent and failed webhooks per minute (uPlot, vendored; it styles through the CSSOM, which the CSP
// allows).

import { api } from "../api.js";
import { every, h, notice, table, time } from "../dom.js";

export const title = "Endpoint health";

const MINUTES = 60;
const REFRESH_MS = 15000;

export function render(root, { signal }) {
  const healthArea = h("div", {}, h("p", { class: "muted" }, "Loading…"));
  const chartBox = h("div", { class: "chart", role: "img", "aria-label": "Sent and failed webhooks per minute" });
  const summary = notice();
  root.append(
    h("h1", {}, "Endpoint health"),
    h("p", { class: "lead" }, `The tries of the last ${MINUTES} minutes, per endpoint.`),
    healthArea,
    h("h2", {}, "Webhooks per minute"),
    summary,
    chartBox,
  );
  const chart = minuteChart(chartBox, signal);

  async function loadHealth() {
    let endpoints;
    try {
      endpoints = await api("GET", "v1/endpoint-health", { query: { minutes: MINUTES }, signal });
    } catch (exc) {
      if (signal.aborted || exc.status === 401) return;
      healthArea.replaceChildren(unavailable(exc));
      return;
    }
    const rows = endpoints.map((e) => [
      h("span", { class: "mono break" }, e.endpoint),
      String(e.tries),
      e.tries ? `${(e.successRate * 100).toFixed(1)} %` : "—",
      e.p50Ms === null || e.p50Ms === undefined ? "—" : `${e.p50Ms} ms`,
      e.p99Ms === null || e.p99Ms === undefined ? "—" : `${e.p99Ms} ms`,
      e.lastFailureAt ? h("span", {}, time(e.lastFailureAt), " ", h("span", { class: "break" }, e.lastFailure ?? "")) : h("span", { class: "muted" }, "none"),
    ]);
    const columns = ["Endpoint", "Tries", "Success rate", "p50", "p99", "Last failure"];
    healthArea.replaceChildren(table("Endpoint health", columns, rows, `No tries in the last ${MINUTES} minutes.`));
  }

  async function loadStats() {
    let stats;
    try {
      stats = await api("GET", "v1/webhook-stats", { query: { minutes: MINUTES }, signal });
    } catch (exc) {
      if (signal.aborted || exc.status === 401) return;
      summary.say(unavailable(exc).textContent, "error");
      chartBox.hidden = true;
      return;
    }
    const sent = stats.minutes.reduce((sum, m) => sum + m.sent, 0);
    const failed = stats.minutes.reduce((sum, m) => sum + m.failed, 0);
    summary.say(`In the last ${MINUTES} minutes: ${sent} sent, ${failed} failed.`);
    chartBox.setAttribute("aria-label", `Webhooks per minute over the last ${MINUTES} minutes: ${sent} sent, ${failed} failed`);
    chartBox.hidden = false;
    chart.show(stats.minutes);
  }

  const load = () => Promise.all([loadHealth(), loadStats()]);
  load();
  every(REFRESH_MS, load, signal);
}

function unavailable(exc) {
  const words = exc.status === 404 ? "Not available: this service does not report it yet." : exc.message;
  return h("p", { class: "notice error" }, words);
}

/** A uPlot chart of sent and failed per minute in ``box``, sized to it. */
function minuteChart(box, signal) {
  let plot = null;
  const size = () => ({ width: Math.max(box.clientWidth - 18, 260), height: 240 }); // inside its padding
  const resized = new ResizeObserver(() => plot?.setSize(size()));
  resized.observe(box);
  signal.addEventListener("abort", () => {
    resized.disconnect();
    plot?.destroy();
  });
  return {
    show(minutes) {
      const data = [minutes.map((m) => Date.parse(m.at) / 1000), minutes.map((m) => m.sent), minutes.map((m) => m.failed)];
      if (plot) {
        plot.setData(data);
        return;
      }
      const uPlot = globalThis.uPlot;
      if (!uPlot) {
        box.replaceChildren(h("p", { class: "muted" }, "The chart library did not load."));
        return;
      }
      plot = new uPlot(
        {
          ...size(),
          scales: { x: { time: true }, y: { range: (u, min, max) => [0, Math.max(1, max)] } },
          series: [
            {},
            { label: "Sent", stroke: "#1a7f37", fill: "rgba(26, 127, 55, 0.12)", width: 2, points: { show: false } },
            { label: "Failed", stroke: "#cf222e", fill: "rgba(207, 34, 46, 0.12)", width: 2, points: { show: false } },
          ],
          axes: [{}, { label: "webhooks" }],
        },
        data,
        box,
      );
    },
  };
}

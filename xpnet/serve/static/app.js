// The drawing page: records the pen's strokes on #pad and sends them to POST /draw,
// which answers the 28x28 input they were prepared into and the network's reading.
"use strict";

const PEN = 28; // the pen's width in the pad's pixels: strokes as thick as MNIST's
const MIN_STEP = 2; // points closer than this to the last one are not recorded

const pad = document.getElementById("pad");
const ink = pad.getContext("2d");
const input = document.getElementById("input").getContext("2d");
const prediction = document.getElementById("prediction");
const bars = document.getElementById("bars");
const error = document.getElementById("error");

let classes = [];
let strokes = [];
let drawing = false;
let inFlight = false;
let pending = false;
let generation = 0; // bumped by Clear: answers to older drawings are dropped

function setBusy() {
  document.body.dataset.busy = inFlight || pending ? "1" : "0";
}

function buildBars(names) {
  classes = names;
  bars.replaceChildren();
  for (const name of names) {
    const row = document.createElement("div");
    row.className = "bar";
    row.innerHTML = '<span class="name"></span><div class="track"><div class="fill"></div></div>'
      + '<span class="value"></span>';
    row.querySelector(".name").textContent = name;
    bars.append(row);
  }
}

function showReading(answer) {
  const p = answer.probabilities;
  prediction.textContent = `${classes[answer.label] ?? answer.label} (${(100 * p[answer.label]).toFixed(1)}%)`;
  bars.querySelectorAll(".bar").forEach((row, i) => {
    row.classList.toggle("top", i === answer.label);
    row.querySelector(".fill").style.width = `${(100 * p[i]).toFixed(1)}%`;
    row.querySelector(".value").textContent = `${(100 * p[i]).toFixed(1)}%`;
  });
  const pixels = input.createImageData(28, 28);
  answer.image.flat().forEach((v, i) => {
    pixels.data.set([v, v, v, 255], 4 * i);
  });
  input.putImageData(pixels, 0, 0);
}

function clearReading() {
  prediction.textContent = "\u2013";
  bars.querySelectorAll(".bar").forEach((row) => {
    row.classList.remove("top");
    row.querySelector(".fill").style.width = "0";
    row.querySelector(".value").textContent = "";
  });
  input.clearRect(0, 0, 28, 28);
  error.textContent = "";
}

async function send() {
  if (inFlight) {
    pending = true;
    setBusy();
    return;
  }
  inFlight = true;
  pending = false;
  setBusy();
  const sent = generation;
  try {
    const response = await fetch("/draw", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ strokes, pen: PEN }),
    });
    const answer = await response.json();
    if (sent === generation) {
      if (response.ok) {
        error.textContent = "";
        showReading(answer);
      } else {
        error.textContent = answer.error;
      }
    }
  } catch (err) {
    error.textContent = `the server did not answer: ${err}`;
  } finally {
    inFlight = false;
    if (pending && strokes.length) {
      send();
    } else {
      pending = false;
      setBusy();
    }
  }
}

function at(event) {
  const box = pad.getBoundingClientRect();
  return [
    ((event.clientX - box.left) * pad.width) / box.width,
    ((event.clientY - box.top) * pad.height) / box.height,
  ];
}

function line(from, to) {
  ink.beginPath();
  ink.moveTo(from[0], from[1]);
  ink.lineTo(to[0], to[1]);
  ink.stroke();
}

pad.addEventListener("pointerdown", (event) => {
  event.preventDefault();
  pad.setPointerCapture(event.pointerId);
  drawing = true;
  const p = at(event);
  strokes.push([p]);
  line(p, p);
  send();
});

pad.addEventListener("pointermove", (event) => {
  if (!drawing) return;
  const stroke = strokes[strokes.length - 1];
  const last = stroke[stroke.length - 1];
  const p = at(event);
  if (Math.hypot(p[0] - last[0], p[1] - last[1]) < MIN_STEP) return;
  stroke.push(p);
  line(last, p);
  send();
});

function penUp(event) {
  if (!drawing) return;
  drawing = false;
  const stroke = strokes[strokes.length - 1];
  const p = at(event);
  const last = stroke[stroke.length - 1];
  if (p[0] !== last[0] || p[1] !== last[1]) {
    stroke.push(p);
    line(last, p);
  }
  send();
}
pad.addEventListener("pointerup", penUp);
pad.addEventListener("pointercancel", penUp);

document.getElementById("clear").addEventListener("click", () => {
  generation += 1;
  strokes = [];
  pending = false;
  ink.clearRect(0, 0, pad.width, pad.height);
  clearReading();
  setBusy();
});

ink.lineWidth = PEN;
ink.lineCap = "round";
ink.lineJoin = "round";
ink.strokeStyle = "#111";

fetch("/model")
  .then((response) => response.json())
  .then((model) => buildBars(model.classes))
  .catch((err) => {
    error.textContent = `the server did not answer: ${err}`;
  });

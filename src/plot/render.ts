/**
 * Headless chart rendering: a Vega-Lite spec is compiled to Vega, rendered to SVG by a Vega
 * view with no renderer attached (no DOM, no canvas), and rasterised to PNG by resvg.
 *
 * Fonts: the SVG names the generic family `sans-serif` and is complete on its own (the viewer
 * draws the text). resvg has no built-in font, so the PNG's text needs a font file on the
 * machine: a known sans font is looked up first (DejaVu Sans, Liberation Sans, Arial), then any
 * installed font; with none, the PNG is written without text and a warning says so once.
 * `TRAINCHART_PLOT_FONT=/path/to/font.ttf` picks the font explicitly.
 */
import { existsSync, readdirSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import type { ResvgRenderOptions } from '@resvg/resvg-js';
import type { TopLevelSpec } from 'vega-lite';

export type { TopLevelSpec };

export interface PlotFiles {
  svg: string;
  png: string;
}

/** `runs/loss`, `runs/loss.svg` and `runs/loss.png` all name the pair runs/loss.{svg,png}. */
export function plotPaths(path: string): PlotFiles {
  const stem = path.replace(/\.(svg|png)$/i, '');
  return { svg: `${stem}.svg`, png: `${stem}.png` };
}

// Loaded on first use: the Learner imports the Recorder, and a process that never plots
// should not pay for loading Vega and the resvg native module.
let libs: Promise<{ vega: typeof import('vega'); vl: typeof import('vega-lite'); Resvg: typeof import('@resvg/resvg-js').Resvg }> | null = null;
function loadLibs() {
  return (libs ??= Promise.all([import('vega'), import('vega-lite'), import('@resvg/resvg-js')]).then(([vega, vl, resvg]) => ({
    vega,
    vl,
    Resvg: resvg.Resvg,
  })));
}

/** The chart as an SVG document. */
export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const { vega, vl } = await loadLibs();
  const view = new vega.View(vega.parse(vl.compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

export interface PlotFont {
  /** Font files handed to resvg (empty: the system's fonts are scanned instead). */
  files: string[];
  /** The family `sans-serif` maps to, when a known font was found. */
  family: string | null;
  /** False when no font file exists at all: the PNG then has no text. */
  available: boolean;
}

/** Sans fonts looked for, best first: [family, regular face, bold face] (bold is optional). */
const KNOWN_FONTS: ReadonlyArray<readonly [string, string, string]> = [
  ['DejaVu Sans', '/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf', '/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf'], // Debian, Ubuntu
  ['DejaVu Sans', '/usr/share/fonts/TTF/DejaVuSans.ttf', '/usr/share/fonts/TTF/DejaVuSans-Bold.ttf'], // Arch
  ['DejaVu Sans', '/usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf', '/usr/share/fonts/dejavu-sans-fonts/DejaVuSans-Bold.ttf'], // Fedora
  ['DejaVu Sans', '/usr/share/fonts/dejavu/DejaVuSans.ttf', '/usr/share/fonts/dejavu/DejaVuSans-Bold.ttf'], // Alpine
  [
    'Liberation Sans',
    '/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf',
    '/usr/share/fonts/truetype/liberation/LiberationSans-Bold.ttf',
  ],
  ['Arial', '/System/Library/Fonts/Supplemental/Arial.ttf', '/System/Library/Fonts/Supplemental/Arial Bold.ttf'], // macOS
  ['Arial', 'C:\\Windows\\Fonts\\arial.ttf', 'C:\\Windows\\Fonts\\arialbd.ttf'],
];

const FONT_DIRS = [
  '/usr/share/fonts',
  '/usr/local/share/fonts',
  join(homedir(), '.local/share/fonts'),
  join(homedir(), '.fonts'),
  '/System/Library/Fonts',
  '/Library/Fonts',
  'C:\\Windows\\Fonts',
];

/** Depth-limited search for any font file, to tell "no font at all" from "no known font". */
function anyFontFile(dir: string, depth = 4): boolean {
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return false;
  }
  for (const e of entries) if (e.isFile() && /\.(ttf|otf|ttc)$/i.test(e.name)) return true;
  if (depth === 0) return false;
  return entries.some((e) => e.isDirectory() && anyFontFile(join(dir, e.name), depth - 1));
}

let fontCache: PlotFont | null = null;

/** Which font the PNG's text is drawn with (looked up once per process). */
export function plotFont(): PlotFont {
  if (fontCache) return fontCache;
  const explicit = process.env.TRAINCHART_PLOT_FONT;
  if (explicit) {
    if (!existsSync(explicit)) throw new Error(`TRAINCHART_PLOT_FONT=${explicit}: no such file`);
    // The family name inside the file is unknown here; resvg takes the only loaded font as default.
    return (fontCache = { files: [explicit], family: null, available: true });
  }
  for (const [family, regular, bold] of KNOWN_FONTS) {
    if (!existsSync(regular)) continue;
    // With the bold face loaded, titles stay bold instead of falling back to the regular face.
    const files = existsSync(bold) ? [regular, bold] : [regular];
    return (fontCache = { files, family, available: true });
  }
  return (fontCache = { files: [], family: null, available: FONT_DIRS.some((d) => anyFontFile(d)) });
}

let warnedNoFont = false;

/** The SVG rasterised at `scale`× its size, on white. */
export async function svgToPng(svg: string, scale = 2): Promise<Buffer> {
  const { Resvg } = await loadLibs();
  const font = plotFont();
  if (!font.available && !warnedNoFont) {
    warnedNoFont = true;
    process.emitWarning(
      'no font file found: PNG charts are drawn without text (the SVGs are complete). ' +
        'Install one (e.g. apt-get install fonts-dejavu-core) or set TRAINCHART_PLOT_FONT=/path/to/font.ttf',
      'TrainchartPlotWarning',
    );
  }
  const fontOptions: NonNullable<ResvgRenderOptions['font']> =
    font.files.length > 0
      ? {
          loadSystemFonts: false,
          fontFiles: font.files,
          ...(font.family ? { defaultFontFamily: font.family, sansSerifFamily: font.family } : {}),
        }
      : { loadSystemFonts: true };
  const resvg = new Resvg(svg, { font: fontOptions, background: 'white', fitTo: { mode: 'zoom', value: scale } });
  return resvg.render().asPng();
}

/** Renders `spec` and writes `<stem>.svg` and `<stem>.png` (directories are created). */
export async function renderVegaLite(spec: TopLevelSpec, path: string): Promise<PlotFiles> {
  const files = plotPaths(path);
  const svg = await renderSvg(spec);
  const png = await svgToPng(svg);
  await mkdir(dirname(files.svg), { recursive: true });
  await Promise.all([writeFile(files.svg, svg), writeFile(files.png, png)]);
  return files;
}

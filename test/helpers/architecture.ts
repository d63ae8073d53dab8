/**
 * The import checker behind test/architecture.test.ts: reads the rules from the machine-readable
 * blocks of docs/ARCHITECTURE.md and lists every import in a source tree that breaks them.
 *
 * Imports are read with the TypeScript compiler API, not with regular expressions, so comments and
 * strings never count and every form counts: `import`, `import type`, `export ... from`,
 * `import x = require(...)`, dynamic `import()` and `typeof import(...)` types. Type-only imports
 * count as arrows and as circle edges too (docs/ARCHITECTURE.md, "Rules"): they make no runtime
 * cycle, but they do couple the files, and a reader must still read both to understand either.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import ts from 'typescript';

/** One part of the architecture: a folder (`src/x/**`) or a single file, and what it may import. */
export interface Part {
  readonly name: string;
  /** Repository-relative: `src/crypto/**` or `src/errors.ts`. */
  readonly path: string;
  /** Names of the other parts this part may import (a part may always import itself). */
  readonly mayImport: readonly string[];
}

export interface ArchitectureRules {
  /** Bottom-up: a part may import only parts listed above it. */
  readonly parts: readonly Part[];
  /** Module names (`sodium-native`, `@noble/*`, `node:crypto`) only `restrictedTo` may import. */
  readonly restricted: readonly { readonly module: string; readonly restrictedTo: string }[];
  /**
   * Folders inside a part and the arrows allowed between them (optional block). A part with rows
   * here has every file in one of them; imports within one folder are always allowed.
   */
  readonly inside: readonly Part[];
}

export type RuleName = 'arrow' | 'arrow-inside' | 'circle' | 'crypto-only' | 'no-part' | 'layering';

export interface Violation {
  readonly rule: RuleName;
  /** Repository-relative file (or docs/ARCHITECTURE.md for a rule that contradicts itself). */
  readonly file: string;
  readonly message: string;
}

export interface ImportRef {
  readonly specifier: string;
  readonly line: number;
  readonly typeOnly: boolean;
  readonly form: 'import' | 'export-from' | 'dynamic-import' | 'import-type' | 'require';
}

/** In the restricted table's second column: the module may be imported by no part of `src`. */
const NO_PART = '—';
const PARTS_START = '<!-- architecture:parts -->';
const PARTS_END = '<!-- /architecture:parts -->';
const RESTRICTED_START = '<!-- architecture:restricted -->';
const RESTRICTED_END = '<!-- /architecture:restricted -->';
const INSIDE_START = '<!-- architecture:inside -->';
const INSIDE_END = '<!-- /architecture:inside -->';

function block(markdown: string, start: string, end: string): string {
  const from = markdown.indexOf(start);
  const to = markdown.indexOf(end);
  if (from < 0 || to < from) throw new Error(`docs/ARCHITECTURE.md: no block between ${start} and ${end}`);
  return markdown.slice(from + start.length, to);
}

/** Table rows `| a | b | c |` of a block, header and separator rows dropped, backticks stripped. */
function tableRows(text: string): string[][] {
  const rows: string[][] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line.startsWith('|')) continue;
    const cells = line
      .slice(1, line.endsWith('|') ? -1 : undefined)
      .split('|')
      .map((c) => c.trim().replaceAll('`', ''));
    if (cells.every((c) => /^:?-+:?$/.test(c))) continue;
    rows.push(cells);
  }
  return rows.slice(1); // header
}

function list(cell: string | undefined): string[] {
  if (cell === undefined || cell === '' || cell === '—' || cell === '-' || cell === 'nothing') return [];
  return cell
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

/** Parse the two machine-readable tables of docs/ARCHITECTURE.md. */
export function parseArchitecture(markdown: string): ArchitectureRules {
  const parts = tableRows(block(markdown, PARTS_START, PARTS_END)).map(([name, path, mayImport]) => {
    if (!name || !path) throw new Error(`docs/ARCHITECTURE.md: a parts row lacks a name or a path`);
    return { name, path, mayImport: list(mayImport) };
  });
  const restricted = tableRows(block(markdown, RESTRICTED_START, RESTRICTED_END)).map(([module, to]) => {
    if (!module || !to) throw new Error(`docs/ARCHITECTURE.md: a restricted row lacks a module or a part`);
    return { module, restrictedTo: to };
  });
  const inside = markdown.includes(INSIDE_START)
    ? tableRows(block(markdown, INSIDE_START, INSIDE_END)).map(([name, path, mayImport]) => {
        if (!name || !path) throw new Error(`docs/ARCHITECTURE.md: an inside row lacks a name or a path`);
        return { name, path, mayImport: list(mayImport) };
      })
    : [];
  return { parts, restricted, inside };
}

/** Every import a file makes, whatever its form. */
export function importsOf(fileName: string, source: string): ImportRef[] {
  const sf = ts.createSourceFile(fileName, source, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const found: ImportRef[] = [];
  const add = (
    node: ts.Node,
    spec: ts.Expression | undefined,
    typeOnly: boolean,
    form: ImportRef['form'],
  ) => {
    if (spec === undefined || !ts.isStringLiteralLike(spec)) return;
    const line = sf.getLineAndCharacterOfPosition(node.getStart(sf)).line + 1;
    found.push({ specifier: spec.text, line, typeOnly, form });
  };
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node)) {
      const clause = node.importClause;
      const typeOnly =
        clause !== undefined &&
        (clause.isTypeOnly ||
          (clause.name === undefined &&
            clause.namedBindings !== undefined &&
            ts.isNamedImports(clause.namedBindings) &&
            clause.namedBindings.elements.length > 0 &&
            clause.namedBindings.elements.every((e) => e.isTypeOnly)));
      add(node, node.moduleSpecifier, typeOnly, 'import');
    } else if (ts.isExportDeclaration(node)) {
      add(node, node.moduleSpecifier, node.isTypeOnly, 'export-from');
    } else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference)) {
      add(node, node.moduleReference.expression, node.isTypeOnly, 'require');
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
      add(node, node.arguments[0], false, 'dynamic-import');
    } else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument)) {
      add(node, node.argument.literal, true, 'import-type');
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return found;
}

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir).sort()) {
    const full = join(dir, entry);
    if (statSync(full).isDirectory()) out.push(...sourceFiles(full));
    else if (/\.(ts|mts|cts|js|mjs)$/.test(entry)) out.push(full);
  }
  return out;
}

/** Repository-relative path with forward slashes. */
function rel(root: string, file: string): string {
  return relative(root, file).split(sep).join('/');
}

function partOf(parts: readonly Part[], file: string): Part | undefined {
  return parts.find((p) => (p.path.endsWith('/**') ? file.startsWith(p.path.slice(0, -2)) : file === p.path));
}

function resolveRelative(fromFile: string, specifier: string): string | undefined {
  const base = resolve(dirname(fromFile), specifier);
  const candidates = [base, `${base}.ts`, join(base, 'index.ts'), base.replace(/\.js$/, '.ts')];
  return candidates.find((c) => existsSync(c) && statSync(c).isFile());
}

function matchesModule(pattern: string, specifier: string): boolean {
  if (pattern.endsWith('/*')) return specifier.startsWith(pattern.slice(0, -1));
  return specifier === pattern || specifier.startsWith(`${pattern}/`);
}

function describe(ref: ImportRef): string {
  const kind = ref.form === 'import' && ref.typeOnly ? 'import type' : ref.form;
  return `line ${ref.line}: ${kind} '${ref.specifier}'`;
}

/** The rules contradict themselves when a part may import a part listed after it (an upward arrow). */
export function checkLayering(rules: ArchitectureRules): Violation[] {
  const out: Violation[] = [];
  const index = new Map(rules.parts.map((p, i) => [p.name, i]));
  rules.parts.forEach((p, i) => {
    for (const target of p.mayImport) {
      const j = index.get(target);
      const problem =
        j === undefined ? `names an unknown part '${target}'` : j >= i ? `points up to '${target}'` : '';
      if (problem !== '') {
        out.push({
          rule: 'layering',
          file: 'docs/ARCHITECTURE.md',
          message: `[layering] part '${p.name}' ${problem}: a part may import only parts listed above it`,
        });
      }
    }
  });
  for (const r of rules.restricted) {
    // '—': no part may import the module (a benchmark-only dependency).
    if (r.restrictedTo !== NO_PART && !index.has(r.restrictedTo)) {
      out.push({
        rule: 'layering',
        file: 'docs/ARCHITECTURE.md',
        message: `[layering] '${r.module}' is restricted to an unknown part '${r.restrictedTo}'`,
      });
    }
  }
  return out;
}

/**
 * Check every source file under `root/src` against the rules. Returns all violations, sorted, so one
 * run shows everything that must change.
 */
export function checkTree(root: string, rules: ArchitectureRules): Violation[] {
  const violations: Violation[] = [...checkLayering(rules)];
  const files = sourceFiles(join(root, 'src'));
  const edges = new Map<string, { to: string; ref: ImportRef }[]>();

  for (const abs of files) {
    const file = rel(root, abs);
    const part = partOf(rules.parts, file);
    if (
      part !== undefined &&
      partOf(rules.inside, file) === undefined &&
      rules.inside.some((r) => partOf([part], r.path.replace(/\/\*\*$/, '/x.ts')) !== undefined)
    ) {
      violations.push({
        rule: 'no-part',
        file,
        message: `[no-part] ${file} belongs to no folder of part '${part.name}' in docs/ARCHITECTURE.md; add it to a row of the inside table`,
      });
    }
    if (part === undefined) {
      violations.push({
        rule: 'no-part',
        file,
        message: `[no-part] ${file} belongs to no part of docs/ARCHITECTURE.md; add it to a part's path`,
      });
    }
    const fileEdges: { to: string; ref: ImportRef }[] = [];
    edges.set(file, fileEdges);
    for (const ref of importsOf(abs, readFileSync(abs, 'utf8'))) {
      for (const r of rules.restricted) {
        if (matchesModule(r.module, ref.specifier) && part?.name !== r.restrictedTo) {
          violations.push({
            rule: 'crypto-only',
            file,
            message:
              r.restrictedTo === NO_PART
                ? `[crypto-only] ${file} ${describe(ref)}: '${r.module}' may be imported by no part of src`
                : `[crypto-only] ${file} ${describe(ref)}: '${r.module}' may be imported only in part '${r.restrictedTo}'`,
          });
        }
      }
      if (!ref.specifier.startsWith('.')) continue;
      const target = resolveRelative(abs, ref.specifier);
      if (target === undefined) continue; // tsc reports unresolvable imports
      const to = rel(root, target);
      fileEdges.push({ to, ref });
      if (part === undefined) continue;
      const sub = partOf(rules.inside, file);
      const toSub = partOf(rules.inside, to);
      if (sub !== undefined && toSub !== undefined && sub !== toSub && !sub.mayImport.includes(toSub.name)) {
        violations.push({
          rule: 'arrow-inside',
          file,
          message: `[arrow-inside] ${file} ${describe(ref)}: '${sub.name}' may not import '${toSub.name}' (allowed: ${sub.mayImport.join(', ') || 'nothing'})`,
        });
      }
      const toPart = partOf(rules.parts, to);
      if (toPart === undefined) {
        violations.push({
          rule: 'arrow',
          file,
          message: `[arrow] ${file} ${describe(ref)}: ${to} belongs to no part; '${part.name}' may import only ${part.mayImport.join(', ') || 'itself'}`,
        });
      } else if (toPart.name !== part.name && !part.mayImport.includes(toPart.name)) {
        violations.push({
          rule: 'arrow',
          file,
          message: `[arrow] ${file} ${describe(ref)}: part '${part.name}' may not import part '${toPart.name}' (allowed: ${part.mayImport.join(', ') || 'nothing'})`,
        });
      }
    }
  }
  violations.push(...findCircles(edges));
  return violations.sort((a, b) => a.rule.localeCompare(b.rule) || a.file.localeCompare(b.file));
}

/**
 * Import circles between files: each strongly connected component of more than one file (or a file
 * importing itself) is one violation, naming its files and one concrete circle through them.
 */
export function findCircles(
  edges: ReadonlyMap<string, readonly { to: string; ref: ImportRef }[]>,
): Violation[] {
  // Tarjan's algorithm; recursion depth is the longest import chain, a few dozen files.
  let counter = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const components: string[][] = [];
  const strong = (v: string): void => {
    index.set(v, counter);
    low.set(v, counter);
    counter++;
    stack.push(v);
    onStack.add(v);
    for (const { to } of edges.get(v) ?? []) {
      if (!edges.has(to)) continue;
      if (!index.has(to)) {
        strong(to);
        low.set(v, Math.min(low.get(v)!, low.get(to)!));
      } else if (onStack.has(to)) {
        low.set(v, Math.min(low.get(v)!, index.get(to)!));
      }
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      components.push(component.sort());
    }
  };
  for (const v of [...edges.keys()].sort()) if (!index.has(v)) strong(v);

  const out: Violation[] = [];
  for (const component of components) {
    const members = new Set(component);
    const first = component[0]!;
    const selfLoop = (edges.get(first) ?? []).some((e) => e.to === first);
    if (component.length === 1 && !selfLoop) continue;
    const circle = shortestCircle(first, members, edges);
    const steps = circle.map((s) => `${s.from} ${describe(s.ref)}`).join('\n      → ');
    // Every import that keeps the component together: cutting enough of these breaks the circle.
    const inside = component.flatMap((from) =>
      (edges.get(from) ?? [])
        .filter((e) => members.has(e.to))
        .map((e) => `      ${from} ${describe(e.ref)} → ${e.to}`),
    );
    out.push({
      rule: 'circle',
      file: first,
      message:
        `[circle] import circle among ${component.length} file(s): ${component.join(', ')}\n` +
        `    shortest circle: ${steps}\n      → back to ${first}\n` +
        `    all ${inside.length} imports between these files:\n${inside.join('\n')}`,
    });
  }
  return out;
}

/** Breadth-first: the shortest path from `start` back to itself inside one component. */
function shortestCircle(
  start: string,
  members: ReadonlySet<string>,
  edges: ReadonlyMap<string, readonly { to: string; ref: ImportRef }[]>,
): { from: string; ref: ImportRef }[] {
  const previous = new Map<string, { from: string; ref: ImportRef }>();
  const queue = [start];
  while (queue.length > 0) {
    const v = queue.shift()!;
    for (const e of edges.get(v) ?? []) {
      if (!members.has(e.to) || previous.has(e.to)) continue;
      previous.set(e.to, { from: v, ref: e.ref });
      if (e.to === start) {
        const path: { from: string; ref: ImportRef }[] = [];
        let at = start;
        do {
          const step = previous.get(at)!;
          path.unshift(step);
          at = step.from;
        } while (at !== start);
        return path;
      }
      queue.push(e.to);
    }
  }
  return [];
}

/** Human-readable report: one block per violation. */
export function formatViolations(violations: readonly Violation[]): string {
  return `${violations.length} architecture violation(s) (docs/ARCHITECTURE.md):\n${violations
    .map((v) => `  ${v.message}`)
    .join('\n')}`;
}

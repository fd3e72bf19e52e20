import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  create,
  createFileRegistry,
  type DescMessage,
  type FileRegistry,
  fromBinary,
  toBinary,
} from '@bufbuild/protobuf';
import { protoCamelCase } from '@bufbuild/protobuf/reflect';
import {
  type DescriptorProto,
  DescriptorProtoSchema,
  type EnumDescriptorProto,
  EnumDescriptorProtoSchema,
  FieldDescriptorProto_Label,
  FieldDescriptorProto_Type,
  FieldDescriptorProtoSchema,
  type FileDescriptorProto,
  FileDescriptorProtoSchema,
  type FileDescriptorSet,
  FileDescriptorSetSchema,
  file_google_protobuf_any,
  file_google_protobuf_api,
  file_google_protobuf_descriptor,
  file_google_protobuf_duration,
  file_google_protobuf_empty,
  file_google_protobuf_field_mask,
  file_google_protobuf_source_context,
  file_google_protobuf_struct,
  file_google_protobuf_timestamp,
  file_google_protobuf_type,
  file_google_protobuf_wrappers,
  OneofDescriptorProtoSchema,
} from '@bufbuild/protobuf/wkt';
import protobuf from 'protobufjs';
import { envoyProtoIncludeDirectories, envoyProtoRoot } from '../agent/envoy-api/protos.ts';

/**
 * Envoy's API schema as `@bufbuild/protobuf` descriptors, built at run time from the `.proto` files that
 * `@grpc/grpc-js-xds` ships. protobufjs parses the files (it keeps custom options such as
 * `(validate.rules)` uninterpreted, so the old `validate.proto` without `ignore_empty` is no obstacle);
 * this module turns its reflection tree into `FileDescriptorProto`s, one per `.proto` file, and registers
 * them next to the well-known types that `@bufbuild/protobuf` embeds.
 */
export interface EnvoyApiSchema {
  readonly registry: FileRegistry;
  /** `envoy.config.bootstrap.v3.Bootstrap`. */
  readonly bootstrap: DescMessage;
  readonly fileCount: number;
  /** API files left out because an import is missing from the npm package; their types are unknown. */
  readonly skippedFiles: readonly string[];
  readonly messageCount: number;
  /** Whether the descriptors came from the cross-process cache rather than from parsing the protos. */
  readonly fromCache: boolean;
  /** How long building the schema took, for the record (it happens once per process). */
  readonly loadMilliseconds: number;
}

/** Top-level directories whose `.proto` files define Envoy's API and the xDS/UDPA types it embeds. */
const apiDirectories = [
  path.join(envoyProtoRoot, 'envoy-api', 'envoy'),
  path.join(envoyProtoRoot, 'xds', 'xds'),
  path.join(envoyProtoRoot, 'xds', 'udpa'),
];

// Envoy's v2 API is gone from Envoy itself: a v2 `@type` in a bootstrap is an error there, so it must be one here.
const removedApiVersion = /\/(v2|v2alpha|v2alpha1)\//;

// In dependency order (the registry resolves imports as files are added).
const wellKnownFiles = [
  file_google_protobuf_any,
  file_google_protobuf_source_context,
  file_google_protobuf_type,
  file_google_protobuf_api,
  file_google_protobuf_descriptor,
  file_google_protobuf_duration,
  file_google_protobuf_empty,
  file_google_protobuf_field_mask,
  file_google_protobuf_struct,
  file_google_protobuf_timestamp,
  file_google_protobuf_wrappers,
];

let cached: EnvoyApiSchema | undefined;

/**
 * Envoy's API schema, built on first use and then shared for the life of the process. Building it means
 * parsing some 400 `.proto` files (about a second of CPU); the converted descriptors are therefore also kept
 * in a private cache directory (`<tmpdir>/pilot-agent-ts-<uid>`), keyed by a hash of the protos, protobufjs's
 * version and this module's own source, which brings later processes down to a fraction of that.
 */
export function loadEnvoyApiSchema(): EnvoyApiSchema {
  cached ??= buildEnvoyApiSchema({ cacheDirectory: defaultCacheDirectory() });
  return cached;
}

export interface SchemaBuildOptions {
  /** Where converted descriptors are cached across processes; `false` to always parse the protos. */
  readonly cacheDirectory: string | false;
}

function defaultCacheDirectory(): string {
  return path.join(tmpdir(), `pilot-agent-ts-${process.getuid?.() ?? 'user'}`);
}

/** Builds the schema (not memoised: {@link loadEnvoyApiSchema} is what callers want). */
export function buildEnvoyApiSchema(options: SchemaBuildOptions): EnvoyApiSchema {
  const started = performance.now();
  const listing = listApiFiles();
  const cacheFile =
    options.cacheDirectory === false
      ? undefined
      : path.join(options.cacheDirectory, `envoy-api-${cacheKey(listing.contentHash)}.binpb`);
  let set: FileDescriptorSet | undefined;
  let fromCache = false;
  if (cacheFile !== undefined) {
    set = readCachedDescriptors(cacheFile);
    fromCache = set !== undefined;
  }
  if (set === undefined) {
    set = convertProtos(listing.files);
    if (cacheFile !== undefined) writeCachedDescriptors(cacheFile, set);
  }
  const registry = createFileRegistry(
    create(FileDescriptorSetSchema, { file: [...wellKnownFiles.map((file) => file.proto), ...set.file] }),
  );
  const bootstrap = registry.getMessage('envoy.config.bootstrap.v3.Bootstrap');
  if (bootstrap === undefined) {
    throw new Error(
      `envoy.config.bootstrap.v3.Bootstrap is missing from Envoy's protos under ${envoyProtoRoot}`,
    );
  }
  let messageCount = 0;
  for (const type of registry) if (type.kind === 'message') messageCount++;
  return {
    registry,
    bootstrap,
    fileCount: set.file.length + wellKnownFiles.length,
    skippedFiles: listing.skippedFiles,
    messageCount,
    fromCache,
    loadMilliseconds: performance.now() - started,
  };
}

/** Parses the protos with protobufjs and converts them, one FileDescriptorProto per file, dependencies first. */
function convertProtos(apiFiles: readonly string[]): FileDescriptorSet {
  const root = new protobuf.Root();
  root.resolvePath = (origin, target) => resolveImport(origin, target);
  root.loadSync([...apiFiles], { keepCase: true });
  root.resolveAll();
  const files = new FileCollector();
  collectNamespace(root, files);
  return create(FileDescriptorSetSchema, { file: files.inDependencyOrder() });
}

const require = createRequire(import.meta.url);

function cacheKey(contentHash: string): string {
  const hash = createHash('sha256');
  hash.update(contentHash);
  // The parser and the conversion make the content, so a changed one never reads an old cache.
  hash.update(`protobufjs@${(require('protobufjs/package.json') as { version: string }).version}\n`);
  hash.update(readFileSync(fileURLToPath(import.meta.url)));
  return hash.digest('hex').slice(0, 32);
}

/** A cache entry is trusted only inside a directory that this user alone owns and can write. */
function readCachedDescriptors(file: string): FileDescriptorSet | undefined {
  try {
    const directory = statSync(path.dirname(file));
    if (process.getuid !== undefined && directory.uid !== process.getuid()) return undefined;
    if ((directory.mode & 0o077) !== 0) return undefined;
    return fromBinary(FileDescriptorSetSchema, readFileSync(file));
  } catch {
    return undefined;
  }
}

/** Best effort: a read-only or full disk only costs the next process the parse. */
function writeCachedDescriptors(file: string, set: FileDescriptorSet): void {
  const temporary = `${file}.${process.pid}.tmp`;
  try {
    mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    writeFileSync(temporary, toBinary(FileDescriptorSetSchema, set), { mode: 0o600 });
    renameSync(temporary, file);
  } catch {
    rmSync(temporary, { force: true });
  }
}

/**
 * The API files to load: every v3 (and later) file whose imports are all present. The npm package leaves
 * out some third-party imports (OpenCensus, OpenTelemetry, …); files that need them cannot be parsed, and
 * their types are therefore unknown to the validator (`skippedFiles`).
 */
function listApiFiles(): { files: string[]; skippedFiles: string[]; contentHash: string } {
  const candidates: string[] = [];
  for (const directory of apiDirectories) {
    for (const entry of readdirSync(directory, { recursive: true, encoding: 'utf8' })) {
      const relative = entry.split(path.sep).join('/');
      if (relative.endsWith('.proto') && !removedApiVersion.test(`/${relative}`)) {
        candidates.push(path.join(directory, entry));
      }
    }
  }
  const loadable = new Map<string, boolean>();
  const texts = new Map<string, string>();
  const isLoadable = (file: string, visiting: Set<string>): boolean => {
    const known = loadable.get(file);
    if (known !== undefined) return known;
    if (visiting.has(file)) return true;
    visiting.add(file);
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      loadable.set(file, false);
      return false;
    }
    texts.set(protoFileName(file, file), text);
    let result = true;
    for (const match of text.matchAll(/^\s*import\s+(?:public\s+|weak\s+)?"([^"]+)"\s*;/gm)) {
      const target = match[1] as string;
      if (target.startsWith('google/protobuf/')) continue; // embedded well-known types
      const resolved = findImport(target);
      if (resolved === undefined || !isLoadable(resolved, visiting)) {
        result = false;
        break;
      }
    }
    loadable.set(file, result);
    return result;
  };
  const files: string[] = [];
  const skippedFiles: string[] = [];
  for (const file of candidates.sort()) {
    if (isLoadable(file, new Set())) files.push(file);
    else skippedFiles.push(protoFileName(file, file));
  }
  const hash = createHash('sha256');
  for (const [file, text] of [...texts].sort(([a], [b]) => (a < b ? -1 : 1)))
    hash.update(`${file}\n${text}\n`);
  return { files, skippedFiles, contentHash: hash.digest('hex') };
}

function findImport(target: string): string | undefined {
  for (const directory of envoyProtoIncludeDirectories) {
    const candidate = path.join(directory, target);
    if (existsInDirectoryListing(candidate)) return candidate;
  }
  return undefined;
}

function resolveImport(origin: string, target: string): string {
  if (path.isAbsolute(target)) return target;
  return findImport(target) ?? path.resolve(path.dirname(origin), target);
}

const directoryListings = new Map<string, Set<string>>();
function existsInDirectoryListing(file: string): boolean {
  const directory = path.dirname(file);
  let listing = directoryListings.get(directory);
  if (listing === undefined) {
    try {
      listing = new Set(readdirSync(directory));
    } catch {
      listing = new Set();
    }
    directoryListings.set(directory, listing);
  }
  return listing.has(path.basename(file));
}

/** The import path of a parsed file (`envoy/config/core/v3/base.proto`), as protoc would name it. */
function protoFileName(filename: string | null, fullName: string): string {
  if (filename === null) {
    throw new Error(`protobufjs gave no file name for ${fullName}`);
  }
  if (!path.isAbsolute(filename)) return filename;
  for (const directory of envoyProtoIncludeDirectories) {
    const relative = path.relative(directory, filename);
    if (!relative.startsWith('..')) return relative.split(path.sep).join('/');
  }
  throw new Error(`${filename} (defining ${fullName}) is outside Envoy's proto include directories`);
}

class FileCollector {
  readonly #files = new Map<string, FileDescriptorProto>();
  readonly #dependencies = new Map<string, Set<string>>();

  file(name: string, packageName: string, syntax: string): FileDescriptorProto {
    let file = this.#files.get(name);
    if (file === undefined) {
      file = create(FileDescriptorProtoSchema, {
        name,
        package: packageName,
        syntax: syntax === 'proto3' ? 'proto3' : 'proto2',
      });
      this.#files.set(name, file);
      this.#dependencies.set(name, new Set());
    }
    return file;
  }

  depend(fileName: string, dependency: string): void {
    if (dependency !== fileName) this.#dependencies.get(fileName)?.add(dependency);
  }

  /** Files sorted so that each comes after the files it depends on (the registry resolves types eagerly). */
  inDependencyOrder(): FileDescriptorProto[] {
    const ordered: FileDescriptorProto[] = [];
    const visited = new Set<string>();
    const visit = (name: string) => {
      if (visited.has(name)) return;
      visited.add(name);
      const file = this.#files.get(name);
      if (file === undefined) return;
      for (const dependency of this.#dependencies.get(name) ?? []) visit(dependency);
      file.dependency = [...(this.#dependencies.get(name) ?? [])].filter(
        (dependency) => this.#files.has(dependency) || dependency.startsWith('google/protobuf/'),
      );
      ordered.push(file);
    };
    for (const name of [...this.#files.keys()].sort()) visit(name);
    return ordered;
  }
}

function editionOf(object: protobuf.ReflectionObject): string {
  return (object as unknown as { _edition?: string })._edition ?? 'proto2';
}

function collectNamespace(namespace: protobuf.NamespaceBase, files: FileCollector): void {
  for (const nested of namespace.nestedArray) {
    if (nested instanceof protobuf.Type || nested instanceof protobuf.Enum) {
      if (nested.fullName.startsWith('.google.protobuf.')) continue; // embedded well-known types
      const fileName = protoFileName(nested.filename, nested.fullName);
      const packageName = namespace.fullName.replace(/^\./, '');
      const file = files.file(fileName, packageName, editionOf(nested));
      if (nested instanceof protobuf.Type) {
        file.messageType.push(convertMessage(nested, fileName, files));
      } else {
        file.enumType.push(convertEnum(nested));
      }
    } else if (nested instanceof protobuf.Namespace && !(nested instanceof protobuf.Service)) {
      collectNamespace(nested, files);
    }
  }
}

function convertEnum(enumeration: protobuf.Enum): EnumDescriptorProto {
  const values = Object.entries(enumeration.values).map(([name, number]) => ({ name, number }));
  const numbers = new Set(values.map((value) => value.number));
  return create(EnumDescriptorProtoSchema, {
    name: enumeration.name,
    value: values,
    ...(numbers.size !== values.length ? { options: { allowAlias: true } } : {}),
  });
}

const scalarTypes: Record<string, FieldDescriptorProto_Type> = {
  double: FieldDescriptorProto_Type.DOUBLE,
  float: FieldDescriptorProto_Type.FLOAT,
  int64: FieldDescriptorProto_Type.INT64,
  uint64: FieldDescriptorProto_Type.UINT64,
  int32: FieldDescriptorProto_Type.INT32,
  fixed64: FieldDescriptorProto_Type.FIXED64,
  fixed32: FieldDescriptorProto_Type.FIXED32,
  bool: FieldDescriptorProto_Type.BOOL,
  string: FieldDescriptorProto_Type.STRING,
  bytes: FieldDescriptorProto_Type.BYTES,
  uint32: FieldDescriptorProto_Type.UINT32,
  sfixed32: FieldDescriptorProto_Type.SFIXED32,
  sfixed64: FieldDescriptorProto_Type.SFIXED64,
  sint32: FieldDescriptorProto_Type.SINT32,
  sint64: FieldDescriptorProto_Type.SINT64,
};

/** protoc's name for a map field's entry message: `filter_metadata` → `FilterMetadataEntry`. */
function mapEntryName(fieldName: string): string {
  const camel = fieldName.replace(/_([a-z0-9])/g, (_, letter: string) => letter.toUpperCase());
  return `${camel.charAt(0).toUpperCase()}${camel.slice(1)}Entry`;
}

function convertMessage(type: protobuf.Type, fileName: string, files: FileCollector): DescriptorProto {
  const message = create(DescriptorProtoSchema, { name: type.name });
  // protoc lists real oneofs first and the synthetic ones of proto3 `optional` fields after them.
  const oneofs = [...type.oneofsArray].sort(
    (a, b) => Number(isSyntheticOneof(a)) - Number(isSyntheticOneof(b)),
  );
  for (const oneof of oneofs)
    message.oneofDecl.push(create(OneofDescriptorProtoSchema, { name: oneof.name }));

  const typeReference = (
    target: protobuf.ReflectionObject | null,
    typeName: string,
  ): { type: FieldDescriptorProto_Type; typeName?: string } => {
    const scalar = scalarTypes[typeName];
    if (scalar !== undefined) return { type: scalar };
    if (target === null) throw new Error(`${type.fullName}: unresolved type ${typeName}`);
    const targetFile = target.fullName.startsWith('.google.protobuf.')
      ? wellKnownFileOf(target.fullName)
      : protoFileName(topLevelOf(target).filename, target.fullName);
    files.depend(fileName, targetFile);
    return {
      type:
        target instanceof protobuf.Enum ? FieldDescriptorProto_Type.ENUM : FieldDescriptorProto_Type.MESSAGE,
      typeName: target.fullName,
    };
  };

  for (const field of type.fieldsArray) {
    // protoc always records the JSON name; the registry reads it from there.
    const jsonName =
      typeof field.options?.json_name === 'string' ? field.options.json_name : protoCamelCase(field.name);
    const base = { name: field.name, number: field.id, jsonName };
    if (field instanceof protobuf.MapField) {
      const entryName = mapEntryName(field.name);
      message.nestedType.push(
        create(DescriptorProtoSchema, {
          name: entryName,
          options: { mapEntry: true },
          field: [
            {
              name: 'key',
              jsonName: 'key',
              number: 1,
              label: FieldDescriptorProto_Label.OPTIONAL,
              ...typeReference(field.resolvedKeyType, field.keyType),
            },
            {
              name: 'value',
              jsonName: 'value',
              number: 2,
              label: FieldDescriptorProto_Label.OPTIONAL,
              ...typeReference(field.resolvedType, field.type),
            },
          ],
        }),
      );
      message.field.push(
        create(FieldDescriptorProtoSchema, {
          ...base,
          label: FieldDescriptorProto_Label.REPEATED,
          type: FieldDescriptorProto_Type.MESSAGE,
          typeName: `${type.fullName}.${entryName}`,
        }),
      );
      continue;
    }
    const oneofIndex = field.partOf === null ? -1 : oneofs.indexOf(field.partOf);
    message.field.push(
      create(FieldDescriptorProtoSchema, {
        ...base,
        label: field.repeated
          ? FieldDescriptorProto_Label.REPEATED
          : field.required
            ? FieldDescriptorProto_Label.REQUIRED
            : FieldDescriptorProto_Label.OPTIONAL,
        ...typeReference(field.resolvedType, field.type),
        ...(oneofIndex >= 0 ? { oneofIndex } : {}),
        ...(field.options?.proto3_optional === true ? { proto3Optional: true } : {}),
      }),
    );
  }
  for (const nested of type.nestedArray) {
    if (nested instanceof protobuf.Type) message.nestedType.push(convertMessage(nested, fileName, files));
    else if (nested instanceof protobuf.Enum) message.enumType.push(convertEnum(nested));
  }
  return message;
}

function isSyntheticOneof(oneof: protobuf.OneOf): boolean {
  return oneof.fieldsArray.length === 1 && oneof.fieldsArray[0]?.options?.proto3_optional === true;
}

function topLevelOf(object: protobuf.ReflectionObject): protobuf.ReflectionObject {
  let current = object;
  while (current.parent instanceof protobuf.Type) current = current.parent;
  return current;
}

/** Which embedded well-known file defines each `google.protobuf.*` type, from the embedded descriptors themselves. */
const wellKnownTypeFiles = new Map<string, string>();
for (const file of wellKnownFiles) {
  const add = (typeName: string) => wellKnownTypeFiles.set(`.${typeName}`, file.proto.name);
  const addMessage = (message: DescMessage) => {
    add(message.typeName);
    for (const nested of message.nestedMessages) addMessage(nested);
    for (const nested of message.nestedEnums) add(nested.typeName);
  };
  for (const message of file.messages) addMessage(message);
  for (const enumeration of file.enums) add(enumeration.typeName);
}

function wellKnownFileOf(fullName: string): string {
  const file = wellKnownTypeFiles.get(fullName);
  if (file === undefined) throw new Error(`${fullName} is not one of the embedded well-known types`);
  return file;
}

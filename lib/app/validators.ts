/**
 * The class-validator decorators Sirocco's own settings use, each loaded from its own module of
 * the package instead of from its index: the index loads every validator there is (the whole
 * `validator` library), about 14 MiB of memory and 200 ms at start-up that a mail server never
 * uses. Decorators from here and from `class-validator` itself register in one metadata storage,
 * which class-validator keeps process-wide, so users' own settings schemas mix with these freely.
 * The types are the package's own.
 */
import { createRequire } from 'node:module';
import type * as ClassValidator from 'class-validator';

type Api = typeof ClassValidator;
const require = createRequire(import.meta.url);

/** Export `name` of class-validator's module `file` (under `cjs/`), typed as the index types it. */
function part<K extends keyof Api>(file: string, name: K): Api[K] {
  return (require(`class-validator/cjs/${file}.js`) as Api)[name];
}

export const ArrayNotEmpty = part('decorator/array/ArrayNotEmpty', 'ArrayNotEmpty');
export const IsArray = part('decorator/typechecker/IsArray', 'IsArray');
export const IsBoolean = part('decorator/typechecker/IsBoolean', 'IsBoolean');
export const IsIn = part('decorator/common/IsIn', 'IsIn');
export const IsInt = part('decorator/typechecker/IsInt', 'IsInt');
export const IsNotEmpty = part('decorator/common/IsNotEmpty', 'IsNotEmpty');
export const IsObject = part('decorator/typechecker/IsObject', 'IsObject');
export const IsOptional = part('decorator/common/IsOptional', 'IsOptional');
export const IsString = part('decorator/typechecker/IsString', 'IsString');
export const Matches = part('decorator/string/Matches', 'Matches');
export const Max = part('decorator/number/Max', 'Max');
export const Min = part('decorator/number/Min', 'Min');

const { Validator } = require('class-validator/cjs/validation/Validator.js') as { Validator: new () => ClassValidator.Validator };
const { getFromContainer } = require('class-validator/cjs/container.js') as { getFromContainer: Api['getFromContainer'] };

/** class-validator's `validateSync` for an object (what its index exports, without the index). */
export function validateSync(object: object, options?: ClassValidator.ValidatorOptions): ClassValidator.ValidationError[] {
  return getFromContainer(Validator).validateSync(object, options);
}

const { getMetadataStorage } = require('class-validator/cjs/metadata/MetadataStorage.js') as {
  getMetadataStorage: Api['getMetadataStorage'];
};

/** The properties of `schema` (and the classes it extends) that carry a class-validator decorator. */
export function declaredProperties(schema: new () => object): string[] {
  return getMetadataStorage()
    .getTargetValidationMetadatas(schema, '', true, false)
    .map((m) => m.propertyName);
}
export const ValidateBy = part('decorator/common/ValidateBy', 'ValidateBy');

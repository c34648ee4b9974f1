/**
 * `@pilotlight/sdk`: everything a function needs from one package — the routing-controllers
 * decorators and HTTP errors, the invocation context, lifecycle hooks, schedules, the platform
 * logger and scale hints.
 *
 * @example
 * ```ts
 * @Controller('/')
 * export class HelloWorldFunction {
 *   @Post('/')
 *   handle(@HeaderParam('name') name: string) {
 *     logger.info({ name }, 'function is running');
 *     return `hello ${name}`;
 *   }
 * }
 * ```
 */
import 'reflect-metadata';

export {
  All,
  BadRequestError,
  Body,
  BodyParam,
  ContentType,
  Controller,
  Ctx,
  Delete,
  ForbiddenError,
  Get,
  Head,
  Header,
  HeaderParam,
  HeaderParams,
  HttpCode,
  HttpError,
  InternalServerError,
  JsonController,
  MethodNotAllowedError,
  NotAcceptableError,
  NotFoundError,
  OnNull,
  OnUndefined,
  Param,
  Params,
  Patch,
  Post,
  Put,
  QueryParam,
  QueryParams,
  Redirect,
  Req,
  Res,
  UnauthorizedError,
  UseAfter,
  UseBefore,
} from 'routing-controllers';
export { hints, logger } from '@pilotlight/logger';
export type { Logger, ScaleHint } from '@pilotlight/logger';
export { Context, currentContext } from './context.js';
export type { InvocationContext } from './context.js';
export { Initializer, PreStop } from './hooks.js';
export type { PreStopInfo } from './hooks.js';
export { Schedule } from './schedule.js';
export type { ScheduleOptions } from './schedule.js';
export type { PlainHandler } from './serve/plain.js';
